"""Added time to first token: the first token at a websocket client minus the first chunk
leaving the Kimi stub, over 50 sequential messages (budget: median ≤ 5 ms)."""

import asyncio

import aiohttp

from bench.harness import daphne, median, percentile, run_stream, stub, stub_stats

MESSAGES = 50


async def measure(server, stub_url: str) -> list[float]:
    added = []
    async with aiohttp.ClientSession() as session:
        go = asyncio.Event()
        go.set()
        for i in range(MESSAGES):
            stream = await run_stream(session, server, 0, f"ttft-{i}", go)
            chunks = (await stub_stats(stub_url))["chunks"][stream.marker]
            added.append((stream.first_token_at - chunks[0]) * 1000)
    return added


def main() -> None:
    with stub(tokens=20, rate=200) as stub_url, daphne(stub_url, users=1) as server:
        added = asyncio.run(measure(server, stub_url))
    print(f"Added time to first token over {MESSAGES} sequential messages (ms):")
    print(f"  median {median(added):.2f}   p95 {percentile(added, 95):.2f}   max {max(added):.2f}")
    print(f"  budget: median ≤ 5 ms -> {'OK' if median(added) <= 5 else 'OVER'}")


if __name__ == "__main__":
    main()
