"""How one Daphne process keeps up with concurrent streams at 50 tokens/s (200 tokens each), the
messages all sent at the same instant: KimiChat against a bare relay, in the same run, at
several levels of concurrency.

Per level: tokens lost (negative: sent twice, after a takeover), answers saved, the time added
to the first and the last token (arrival at the websocket client minus the stub's send), and
the server's CPU per streamed token, two ways: all of it (accepting the messages, streaming,
saving) over every token, and in the steady middle alone, while nearly every stream is past its
first token and has its last to come (the work per token, without the work per message).

Issue 17's goals: 200 at once with the first token p50 ≤ 100 ms and p99 ≤ 250 ms, all saved;
500 at once with nothing lost, all saved and the first token p99 ≤ 1 s; CPU per streamed token
≤ 1.25x the bare relay's; a process ≤ 150 MB idle. A level is "held" (the capacity
budget) when no token is lost and the p99 added is ≤ 100 ms for the first token and ≤ 250 ms
for the last.

`--thinking`: a thinking model (kimi-k2.6): 50 thoughts stream before the 200 words, relayed
by both apps; the figures stay those of the answer's words.
"""

import asyncio
import bisect
import sqlite3
import sys
import time
from pathlib import Path

import aiohttp

from bench.harness import (
    Stream,
    cpu_seconds,
    daphne,
    median,
    peak_rss_mb,
    percentile,
    rss_mb,
    run_stream,
    stub,
    stub_stats,
)

TOKENS, RATE = 200, 50.0
THINKING = "--thinking" in sys.argv
REASONING, MODEL = (50, "kimi-k2.6") if THINKING else (0, "kimi-k2.6")
LEVELS = [int(n) for n in sys.argv[1:] if n.isdigit()] or [100, 200, 500]
KIMICHAT, RELAY = "KimiChat", "bare relay"
APPS = {KIMICHAT: "kimichat.asgi:application", RELAY: "bench.bare_relay:application"}
# How often the server's CPU time is read while the streams run.
CPU_SAMPLE = 0.02
# The steady middle: from when this share (%) of the streams have had their first token until
# as many still have their last to come; shorter than STEADY_MIN seconds, it is not measured.
STEADY_SHARE = 95
STEADY_MIN = 0.5


async def run_level(server, stub_url: str, level: int, label: str) -> dict:
    start = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=0)
    saved_before = saved_answers(server.database)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [
            asyncio.create_task(run_stream(session, server, i, f"{label}-{level}-{i}", start))
            for i in range(level)
        ]
        await asyncio.sleep(0.5)  # let every socket connect before the simultaneous send
        samples: list[tuple[float, float]] = []
        sampler = asyncio.create_task(sample_cpu(server.pid, samples))
        await asyncio.sleep(CPU_SAMPLE)
        cpu_before = cpu_seconds(server.pid)
        start.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        cpu = cpu_seconds(server.pid) - cpu_before
        sampler.cancel()
    chunks = (await stub_stats(stub_url))["chunks"]
    first, last, lost, rewound, errors = [], [], 0, 0, []
    streams: list[Stream] = []
    for stream in results:
        if isinstance(stream, BaseException) or stream.first_token_at is None:
            lost += TOKENS
            continue
        streams.append(stream)
        lost += TOKENS - stream.text.count(" t")
        rewound += stream.rewinds > 0
        if stream.error:
            errors.append(stream.error)
        sent_first, sent_last = chunks[stream.marker][:2]
        first.append((stream.first_token_at - sent_first) * 1000)
        last.append((stream.last_token_at - sent_last) * 1000)
    held = lost == 0 and percentile(first, 99) <= 100 and percentile(last, 99) <= 250
    saved = saved_answers(server.database)
    return {
        "level": level,
        "lost": lost,
        "rewound": rewound,
        "saved": None if saved is None or saved_before is None else saved - saved_before,
        "held": held,
        "cpu": cpu,
        "per_token": cpu / (level * TOKENS) * 1e6,
        "steady": steady_per_token(streams, samples) if len(streams) == level else None,
        "errors": errors,
        "first": (median(first), percentile(first, 99)),
        "last": (median(last), percentile(last, 99)),
    }


async def sample_cpu(pid: int, samples: list[tuple[float, float]]) -> None:
    while True:
        samples.append((time.monotonic(), cpu_seconds(pid)))
        await asyncio.sleep(CPU_SAMPLE)


def steady_per_token(streams: list[Stream], samples: list[tuple[float, float]]) -> float | None:
    """µs of CPU per token while (nearly) every stream streams: from the time 95% have had
    their first token until 5% have had their last (a straggler or two would leave no window),
    the CPU spent over the tokens that reached the clients meanwhile."""
    begin = percentile([s.first_token_at or 0.0 for s in streams], STEADY_SHARE)
    end = percentile([s.last_token_at or 0.0 for s in streams], 100 - STEADY_SHARE)
    if end - begin < STEADY_MIN:
        return None
    tokens = sum(n for s in streams for at, n in s.arrivals if begin < at <= end)
    spent = cpu_at(samples, end) - cpu_at(samples, begin)
    return spent / tokens * 1e6 if tokens else None


def cpu_at(samples: list[tuple[float, float]], at: float) -> float:
    """The process's CPU time at `at`, read between the two samples around it."""
    i = min(max(bisect.bisect(samples, (at,)), 1), len(samples) - 1)
    (t0, c0), (t1, c1) = samples[i - 1], samples[i]
    return c0 + (c1 - c0) * (at - t0) / (t1 - t0) if t1 > t0 else c1


def saved_answers(database: Path | None) -> int | None:
    """Answers saved done in the server's database (None for an app that saves none)."""
    if database is None:
        return None
    with sqlite3.connect(database, timeout=30) as db:
        try:
            row = db.execute(
                "SELECT count(*) FROM conversations_message WHERE role = 'assistant'"
                " AND state = 'done'"
            ).fetchone()
        except sqlite3.OperationalError:
            return None  # the bare relay's database has no answers
    return row[0]


async def idle_rss(server) -> float:
    """The process's memory once started and one chat page has been served."""
    async with aiohttp.ClientSession() as session:
        url = f"http://{server.url}/c/{server.conversations[0]}/"
        async with session.get(url, headers={"Cookie": server.cookies[0]}) as response:
            assert response.status == 200, (
                f"the chat page answered {response.status} (`manage.py collectstatic` first?)"
            )
            await response.read()
    return rss_mb(server.pid)


def main() -> None:
    results: dict[str, list[dict]] = {}
    idle: dict[str, float] = {}
    with stub(tokens=TOKENS, rate=RATE, reasoning=REASONING) as stub_url:
        for name, app in APPS.items():
            with daphne(stub_url, users=max(LEVELS), app=app, model=MODEL) as server:
                if name == KIMICHAT:
                    idle[name] = asyncio.run(idle_rss(server))
                else:
                    server.database = None
                    idle[name] = rss_mb(server.pid)
                results[name] = []
                for level in LEVELS:
                    r = asyncio.run(run_level(server, stub_url, level, name.replace(" ", "-")))
                    r["rss"] = peak_rss_mb(server.pid)
                    results[name].append(r)
    report(results, idle)


def report(results: dict[str, list[dict]], idle: dict[str, float]) -> None:
    thoughts = f" after {REASONING} thoughts ({MODEL})" if THINKING else ""
    print(
        f"Concurrent streams, {TOKENS} tokens{thoughts} at {RATE:g} tokens/s each, sent at the "
        "same instant, one Daphne process"
    )
    print(
        f"{'app':<11}{'streams':>8}{'lost':>6}{'saved':>6}{'first p50/p99 ms':>18}"
        f"{'last p50/p99 ms':>17}{'CPU s':>7}{'µs/token':>9}{'steady':>7}{'peak MB':>8}  held"
    )
    for name, rows in results.items():
        for r in rows:
            saved = "-" if r["saved"] is None else str(r["saved"])
            steady = "-" if r["steady"] is None else f"{r['steady']:.0f}"
            print(
                f"{name:<11}{r['level']:>8}{r['lost']:>6}{saved:>6}"
                f"{r['first'][0]:>9.0f}/{r['first'][1]:<8.0f}{r['last'][0]:>8.0f}/{r['last'][1]:<8.0f}"
                f"{r['cpu']:>7.1f}{r['per_token']:>9.0f}{steady:>7}{r['rss']:>8.0f}"
                f"  {'yes' if r['held'] else 'no'}"
            )
    for name, rows in results.items():
        for r in rows:
            if r["rewound"]:
                print(
                    f"{name} at {r['level']}: {r['rewound']} answers taken over mid-stream (their "
                    "leases lapsed), their words since the last save sent again: lost counts "
                    "them as negative"
                )
            if r["errors"]:
                failed = len(r["errors"])
                print(f"{name} at {r['level']}: {failed} answers failed, e.g. {r['errors'][0]}")

    ours = {r["level"]: r for r in results[KIMICHAT]}
    relay = {r["level"]: r for r in results[RELAY]}
    ratios = []
    for level, r in ours.items():
        ratio = f"{r['per_token'] / relay[level]['per_token']:.2f}"
        if r["steady"] and relay[level]["steady"]:
            ratio += f" (steady {r['steady'] / relay[level]['steady']:.2f})"
        ratios.append(f"{level}: {ratio}")
    print(f"CPU per streamed token, KimiChat / bare relay (goal ≤ 1.25): {', '.join(ratios)}")
    for level, goal in ((200, "p50 ≤ 100 ms, p99 ≤ 250 ms"), (500, "p99 ≤ 1000 ms")):
        if level in ours:
            r = ours[level]
            print(
                f"{level} at once: first token p50 {r['first'][0]:.0f} ms, p99 "
                f"{r['first'][1]:.0f} ms (goal {goal}); lost {r['lost']}, saved "
                f"{r['saved']}/{level} (bare relay: {relay[level]['first'][0]:.0f} / "
                f"{relay[level]['first'][1]:.0f} ms)"
            )
    print(
        f"Idle memory after start and one page: KimiChat {idle[KIMICHAT]:.0f} MB (goal ≤ 150), "
        f"bare relay {idle[RELAY]:.0f} MB"
    )
    held = {
        name: max([r["level"] for r in rows if r["held"]], default=0)
        for name, rows in results.items()
    }
    times = held[KIMICHAT] / held[RELAY] if held[RELAY] else float("inf")
    print(
        f"Streams held: KimiChat {held[KIMICHAT]}, bare relay {held[RELAY]} "
        f"-> ratio {times:.2f} (budget ≥ 200 streams and ≥ 0.8x the bare relay)"
    )


if __name__ == "__main__":
    main()
