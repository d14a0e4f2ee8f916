"""How many concurrent streams one Daphne process relays at 50 tokens/s (200 tokens each):
KimiChat against a bare relay, in the same run, at several levels of concurrency.

A level is held when no token is lost, the p99 added latency of the first token is ≤ 100 ms
and of the last token ≤ 250 ms (added = arrival at the websocket client - the stub's send).

`--thinking`: a thinking model (kimi-k2.5): 50 thoughts stream before the 200 words, relayed
by both apps; the figures stay those of the answer's words.
"""

import asyncio
import sys

import aiohttp

from bench.harness import (
    cpu_seconds,
    daphne,
    median,
    peak_rss_mb,
    percentile,
    run_stream,
    stub,
    stub_stats,
)

TOKENS, RATE = 200, 50.0
THINKING = "--thinking" in sys.argv
REASONING, MODEL = (50, "kimi-k2.5") if THINKING else (0, "moonshot-v1-8k")
LEVELS = [int(n) for n in sys.argv[1:] if n.isdigit()] or [100, 200, 300, 500]
APPS = {"KimiChat": "kimichat.asgi:application", "bare relay": "bench.bare_relay:application"}


async def run_level(server, stub_url: str, level: int, label: str) -> dict:
    start = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [
            asyncio.create_task(run_stream(session, server, i, f"{label}-{level}-{i}", start))
            for i in range(level)
        ]
        await asyncio.sleep(0.5)  # let every socket connect before the simultaneous send
        cpu_before = cpu_seconds(server.pid)
        start.set()
        streams = await asyncio.gather(*tasks, return_exceptions=True)
        cpu = cpu_seconds(server.pid) - cpu_before
    chunks = (await stub_stats(stub_url))["chunks"]
    first, last, lost, errors = [], [], 0, []
    for stream in streams:
        if isinstance(stream, BaseException) or stream.first_token_at is None:
            lost += TOKENS
            continue
        lost += TOKENS - stream.text.count(" t")
        if stream.error:
            errors.append(stream.error)
        sent_first, sent_last = chunks[stream.marker][:2]
        first.append((stream.first_token_at - sent_first) * 1000)
        last.append((stream.last_token_at - sent_last) * 1000)
    held = lost == 0 and percentile(first, 99) <= 100 and percentile(last, 99) <= 250
    return {
        "level": level,
        "lost": lost,
        "held": held,
        "cpu": cpu,
        "errors": errors,
        "first": (median(first), percentile(first, 99)),
        "last": (median(last), percentile(last, 99)),
    }


def main() -> None:
    results: dict[str, list[dict]] = {}
    with stub(tokens=TOKENS, rate=RATE, reasoning=REASONING) as stub_url:
        for name, app in APPS.items():
            with daphne(stub_url, users=max(LEVELS), app=app, model=MODEL) as server:
                results[name] = []
                for level in LEVELS:
                    r = asyncio.run(run_level(server, stub_url, level, name.replace(" ", "-")))
                    r["rss"] = peak_rss_mb(server.pid)
                    results[name].append(r)
    thoughts = f" after {REASONING} thoughts ({MODEL})" if THINKING else ""
    print(
        f"Concurrent streams, {TOKENS} tokens{thoughts} at {RATE:g} tokens/s each, "
        "one Daphne process"
    )
    print(
        f"{'app':<11}{'streams':>8}{'lost':>7}{'first p50/p99 ms':>19}{'last p50/p99 ms':>18}"
        f"{'CPU s':>8}{'peak RSS MB':>13}  held"
    )
    for name, rows in results.items():
        for r in rows:
            print(
                f"{name:<11}{r['level']:>8}{r['lost']:>7}"
                f"{r['first'][0]:>10.1f}/{r['first'][1]:<8.1f}{r['last'][0]:>9.1f}/{r['last'][1]:<8.1f}"
                f"{r['cpu']:>8.1f}{r['rss']:>13.0f}  {'yes' if r['held'] else 'no'}"
            )
    for name, rows in results.items():
        for r in rows:
            if r["errors"]:
                failed = len(r["errors"])
                print(f"{name} at {r['level']}: {failed} answers failed, e.g. {r['errors'][0]}")
    held = {
        name: max([r["level"] for r in rows if r["held"]], default=0)
        for name, rows in results.items()
    }
    ratio = held["KimiChat"] / held["bare relay"] if held["bare relay"] else float("inf")
    print(
        f"Streams held: KimiChat {held['KimiChat']}, bare relay {held['bare relay']} "
        f"-> ratio {ratio:.2f} (budget ≥ 200 streams and ≥ 0.8x the bare relay)"
    )


if __name__ == "__main__":
    main()
