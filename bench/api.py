"""The OpenAI-compatible API beside the page: added time to first token through
/v1/chat/completions (a streamed request's first word at the HTTP client minus the stub's
send of it), over 50 sequential requests, and 200 concurrent API streams at 50 tokens/s
(200 tokens each), with the page's figures measured in the same run on the same server.

    python -m bench.api            # both
    python -m bench.api 100 200    # the concurrency levels to measure
"""

import asyncio
import json
import re
import sys
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench import capacity, ttft
from bench.harness import (
    Server,
    cpu_seconds,
    daphne,
    median,
    peak_rss_mb,
    percentile,
    stub,
    stub_stats,
)

MESSAGES = 50
TOKENS, RATE = 200, 50.0
LEVELS = [int(n) for n in sys.argv[1:] if n.isdigit()] or [200]
KEY = re.compile(rb'value="(kc-[^"]+)"')
CSRF = re.compile(rb'"X-CSRFToken": "([^"]+)"')


async def api_key(server: Server) -> str:
    """A personal key, made on the API keys page as a person makes one."""
    cookie = server.cookies[0]
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://{server.url}/api-keys/", headers={"Cookie": cookie}) as r:
            page = await r.read()
            csrf = r.cookies["csrftoken"].value
        match = CSRF.search(page)
        assert match, "no CSRF token on the API keys page"
        headers = {
            "Cookie": f"{cookie}; csrftoken={csrf}",
            "X-CSRFToken": match.group(1).decode(),
            "HX-Request": "true",
            "Origin": f"http://{server.url}",
            "Referer": f"http://{server.url}/api-keys/",
        }
        async with session.post(
            f"http://{server.url}/api-keys/", data={"name": "bench"}, headers=headers
        ) as r:
            made = KEY.search(await r.read())
    assert made, "no key made"
    return made.group(1).decode()


@dataclass
class ApiStream:
    marker: str
    first_token_at: float | None = None
    last_token_at: float | None = None
    words: int = 0
    error: str = ""


async def api_stream(
    session: aiohttp.ClientSession, server: Server, key: str, marker: str, model: str
) -> ApiStream:
    """One streamed completion, read as raw server-sent events (no SDK parsing in the way)."""
    stream = ApiStream(marker)
    body = {"model": model, "messages": [{"role": "user", "content": marker}], "stream": True}
    headers = {"Authorization": f"Bearer {key}"}
    async with session.post(
        f"http://{server.url}/v1/chat/completions", json=body, headers=headers
    ) as r:
        if r.status != 200:
            stream.error = f"HTTP {r.status}: {(await r.text())[:200]}"
            return stream
        async for line in r.content:
            if not line.startswith(b"data: {"):
                continue
            now = time.monotonic()
            chunk = json.loads(line[6:])
            if "error" in chunk:
                stream.error = str(chunk["error"])[:200]
                break
            delta = chunk["choices"][0]["delta"] if chunk.get("choices") else {}
            if delta.get("content"):
                if stream.first_token_at is None:
                    stream.first_token_at = now
                stream.last_token_at = now
                stream.words += 1
    return stream


async def api_ttft(server: Server, stub_url: str) -> list[float]:
    key = await api_key(server)
    added = []
    async with aiohttp.ClientSession() as session:
        for i in range(MESSAGES):
            stream = await api_stream(session, server, key, f"api-ttft-{i}", "kimi-k2.6")
            assert stream.first_token_at is not None, stream.error
            first_word = (await stub_stats(stub_url))["chunks"][stream.marker][0]
            added.append((stream.first_token_at - first_word) * 1000)
    return added


async def api_level(server: Server, stub_url: str, key: str, level: int) -> dict:
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        cpu_before = cpu_seconds(server.pid)
        streams = await asyncio.gather(
            *(
                api_stream(session, server, key, f"api-{level}-{i}", "kimi-k2.6")
                for i in range(level)
            ),
            return_exceptions=True,
        )
        cpu = cpu_seconds(server.pid) - cpu_before
    chunks = (await stub_stats(stub_url))["chunks"]
    first, last, lost, errors = [], [], 0, []
    for stream in streams:
        if isinstance(stream, BaseException) or stream.first_token_at is None:
            lost += TOKENS
            errors.append(repr(stream) if isinstance(stream, BaseException) else stream.error)
            continue
        lost += TOKENS - stream.words
        if stream.error:
            errors.append(stream.error)
        sent_first, sent_last = chunks[stream.marker][:2]
        first.append((stream.first_token_at - sent_first) * 1000)
        last.append((stream.last_token_at - sent_last) * 1000)
    return {
        "level": level,
        "lost": lost,
        "cpu": cpu,
        "errors": errors,
        "first": (median(first), percentile(first, 99)),
        "last": (median(last), percentile(last, 99)),
        "held": lost == 0 and percentile(first, 99) <= 100 and percentile(last, 99) <= 250,
    }


def row(label: str, r: dict) -> str:
    return (
        f"{label:<6}{r['level']:>8}{r['lost']:>7}"
        f"{r['first'][0]:>10.1f}/{r['first'][1]:<8.1f}{r['last'][0]:>9.1f}/{r['last'][1]:<8.1f}"
        f"{r['cpu']:>8.1f}{r['rss']:>13.0f}  {'yes' if r['held'] else 'no'}"
    )


PAGE_LIMIT = 300.0  # seconds: the page's figures are the yardstick, not what this measures


def page(measure) -> Any:
    """The page's figures, or None (said why) where they could not be measured."""
    try:
        return asyncio.run(asyncio.wait_for(measure, PAGE_LIMIT))
    except Exception as e:
        print(f"  (the page's figures could not be measured: {e!r})")
        return None


def main() -> None:
    with stub(tokens=20, rate=200) as stub_url, daphne(stub_url, users=1) as server:
        api_added = asyncio.run(api_ttft(server, stub_url))
        page_added = page(ttft.measure(server, stub_url))
    print(f"Added time to first token, {MESSAGES} sequential requests (ms; budget: median ≤ 5):")
    ttft.report("API, /v1/chat/completions", api_added)
    if page_added is not None:
        ttft.report("page, websocket", page_added[0])

    rows = []
    with stub(tokens=TOKENS, rate=RATE) as stub_url:
        with daphne(stub_url, users=max(LEVELS)) as server:
            key = asyncio.run(api_key(server))
            for level in LEVELS:
                r = asyncio.run(api_level(server, stub_url, key, level))
                r["rss"] = peak_rss_mb(server.pid)
                rows.append(("API", r))
        with daphne(stub_url, users=max(LEVELS)) as server:
            for level in LEVELS:
                r = page(capacity.run_level(server, stub_url, level, "page"))
                if r is not None:
                    r["rss"] = peak_rss_mb(server.pid)
                    rows.append(("page", r))
    print(f"Concurrent streams, {TOKENS} tokens at {RATE:g} tokens/s each, one Daphne process")
    print(
        f"{'':<6}{'streams':>8}{'lost':>7}{'first p50/p99 ms':>19}{'last p50/p99 ms':>18}"
        f"{'CPU s':>8}{'peak RSS MB':>13}  held"
    )
    for label, r in rows:
        print(row(label, r))
    for label, r in rows:
        if r["errors"]:
            print(f"{label} at {r['level']}: {len(r['errors'])} failed, e.g. {r['errors'][0]}")


if __name__ == "__main__":
    main()
