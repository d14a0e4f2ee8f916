"""Added time to first token: the first token at a websocket client minus the first chunk
leaving the Kimi stub, over 50 sequential messages (budget: median ≤ 5 ms). Then the same
with a thinking model: the first thought, and the first word of the answer after it."""

import asyncio

import aiohttp

from bench.harness import daphne, median, percentile, run_stream, stub, stub_stats

MESSAGES = 50


async def measure(server, stub_url: str) -> tuple[list[float], list[float]]:
    """Added ms to the first answer token, and to the first thought (where Kimi thinks)."""
    added, thought = [], []
    async with aiohttp.ClientSession() as session:
        go = asyncio.Event()
        go.set()
        for i in range(MESSAGES):
            stream = await run_stream(session, server, 0, f"ttft-{i}", go)
            first_word, _last, first_thought = (await stub_stats(stub_url))["chunks"][stream.marker]
            added.append((stream.first_token_at - first_word) * 1000)
            if first_thought is not None and stream.first_thought_at is not None:
                thought.append((stream.first_thought_at - first_thought) * 1000)
    return added, thought


def report(label: str, added: list[float]) -> None:
    print(f"  {label}: median {median(added):.2f}   p95 {percentile(added, 95):.2f}", end="")
    print(f"   max {max(added):.2f}   -> {'OK' if median(added) <= 5 else 'OVER'}")


def main() -> None:
    with stub(tokens=20, rate=200) as stub_url, daphne(stub_url, users=1) as server:
        added, _ = asyncio.run(measure(server, stub_url))
    print(
        f"Added time to first token over {MESSAGES} sequential messages (ms; budget: median ≤ 5):"
    )
    report("answer, kimi-k2.6", added)
    with (
        stub(tokens=20, rate=200, reasoning=20) as stub_url,
        daphne(stub_url, users=1, model="kimi-k2.6") as server,
    ):
        added, thought = asyncio.run(measure(server, stub_url))
    report("first thought, kimi-k2.6", thought)
    report("answer after thinking, kimi-k2.6", added)


if __name__ == "__main__":
    main()
