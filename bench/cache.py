"""`python -m bench.cache`: how much of each prompt Kimi could serve from its prefix cache,
and did, over a 10-turn chat and over a 10-turn chat about one document sent whole, through
the real server (kimi-k3) against the Kimi stub, which caches as Kimi does: the longest start
a prompt shares with an earlier one to the same model, at the same effort.

For each turn: the share of what Kimi could have cached (the previous request's prompt: all
that Kimi had seen before) that it did, and the estimated input cost (KIMI_PRICES' kimi-k3
price) against the same prompts with no cache. Goal: at least 98% on turns 3-10 of both."""

import asyncio
import json
import os
import subprocess
import sys

import aiohttp

from bench.harness import ROOT, Server, daphne, django_env, run_stream, stub, stub_stats

MODEL = "kimi-k3"
TURNS = 10
DOCUMENT = "handbook.txt"
GOAL = 0.98


def seed_document() -> None:
    """(In the server's environment.) A document of the first user's, read, about 40k tokens."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kimichat.settings")
    django.setup()
    from django.contrib.auth.models import User

    from uploads.models import UploadedFile

    text = "\n\n".join(
        f"Section {i}. The pump in bay {i} is checked every {i % 7 + 1} days; "
        f"its valve opens at {10 + i} bar and the log is kept by shift {i % 3 + 1}." * 4
        for i in range(1, 300)
    )
    UploadedFile.objects.create(
        owner=User.objects.order_by("id")[0],
        name=DOCUMENT,
        size=len(text),
        sha256="0" * 64,
        kind=UploadedFile.Kind.TEXT,
        content_type="text/plain",
        status=UploadedFile.Status.READY,
        text=text,
        tokens=len(text) // 3,
    )


async def chat(server: Server, stub_url: str, questions: list[str]) -> list[dict]:
    """Send the questions one after the other in the conversation; Kimi's usage per turn."""
    async with aiohttp.ClientSession() as session:
        go = asyncio.Event()
        go.set()
        before = len((await stub_stats(stub_url))["usage"])
        for question in questions:
            stream = await run_stream(session, server, 0, question, go)
            if stream.error:
                raise RuntimeError(stream.error)
        return [u for u in (await stub_stats(stub_url))["usage"][before:] if u]


def report(label: str, usage: list[dict]) -> bool:
    from accounts.spend import cost

    print(f"{label} ({MODEL}, {len(usage)} turns):")
    print("  turn  prompt  cached  could  share")
    shares, spent, uncached = [], 0.0, 0.0
    for turn, (now, before) in enumerate(zip(usage, [None, *usage], strict=False), 1):
        prompt, cached = now["prompt_tokens"], now["cached_tokens"]
        could = before["prompt_tokens"] if before else 0
        share = min(cached / could, 1.0) if could else None
        if share is not None and turn >= 3:
            shares.append(share)
        spent += cost(MODEL, prompt=prompt, cached=cached, completion=0, searches=0) or 0
        uncached += cost(MODEL, prompt=prompt, cached=0, completion=0, searches=0) or 0
        shown = f"{share:6.1%}" if share is not None else "     -"
        print(f"  {turn:4}  {prompt:6}  {cached:6}  {could:5}  {shown}")
    low = min(shares)
    print(f"  turns 3-{len(usage)}: lowest share {low:.1%} -> {'OK' if low >= GOAL else 'UNDER'}")
    print(f"  input cost: ${spent:.4f} with the cache, ${uncached:.4f} without ", end="")
    print(f"({spent / uncached:.0%})")
    return low >= GOAL


def main() -> None:
    if sys.argv[1:] == ["--seed-document"]:
        seed_document()
        return
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kimichat.settings")
    import django

    django.setup()
    plain = [f"Question {i}: tell me one more thing about pumps." for i in range(1, TURNS + 1)]
    about = [f"@{DOCUMENT} What does section 3 say?"]
    about += [f"And section {3 + j}?" for j in range(1, TURNS)]
    results = []
    with stub(tokens=40, rate=10_000) as stub_url:
        with daphne(stub_url, users=1, model=MODEL) as server:
            results.append(report("A 10-turn chat", asyncio.run(chat(server, stub_url, plain))))
        with daphne(stub_url, users=1, model=MODEL) as server:
            assert server.database is not None
            env = django_env(server.database, stub_url, MODEL)
            subprocess.run(
                [sys.executable, "-m", "bench.cache", "--seed-document"],
                cwd=ROOT,
                env=env,
                check=True,
            )
            usage = asyncio.run(chat(server, stub_url, about))
            results.append(
                report(f"A 10-turn chat about one document ({DOCUMENT}, sent whole)", usage)
            )
    print(json.dumps({"ok": all(results)}))


if __name__ == "__main__":
    main()
