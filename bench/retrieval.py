"""Retrieval over a team library: how fast passages are indexed (pages per second) and how long
a question takes to find its passages among 10,000 (p50/p99), on a fresh SQLite database by
default, or on the database given: `python -m bench.retrieval [DATABASE_URL]` (use a scratch
PostgreSQL database: the benchmark migrates it and leaves its rows there).

The library: 25 documents of 100 pages, each page about 4,000 characters (four passages) of
words drawn from a 5,000-word vocabulary, one page in ten in Chinese. Questions: 300, of
three to six words from the same vocabulary (Chinese for one in ten).

On a shared machine the wall clock counts the time waited for a core: the CPU time is printed
too, this process's and, for a PostgreSQL server on this machine, its connection's.
"""

import os
import random
import statistics
import sys
import tempfile
import time

from bench.harness import percentile, server_cpu

DOCUMENTS, PAGES = 25, 100
QUESTIONS = 300
HAN = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]


def vocabulary(rng: random.Random) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choices(letters, k=rng.randint(3, 10))) for _ in range(5000)]


def page(rng: random.Random, words: list[str], number: int) -> str:
    if number % 10 == 7:
        text = "".join(rng.choices(HAN, k=1200))
        sentences = [text[i : i + 40] + "。" for i in range(0, len(text), 40)]
    else:
        sentences = [" ".join(rng.choices(words, k=12)).capitalize() + "." for _ in range(60)]
    paragraphs = [" ".join(sentences[i : i + 12]) for i in range(0, len(sentences), 12)]
    return f"[Page {number}]\n" + "\n\n".join(paragraphs)


def question(rng: random.Random, words: list[str]) -> str:
    if rng.random() < 0.1:
        return "".join(rng.choices(HAN, k=rng.randint(4, 10))) + "？"
    return " ".join(rng.choices(words, k=rng.randint(3, 6))) + "?"


def main() -> None:
    scratch = tempfile.TemporaryDirectory()
    os.environ["DATABASE_URL"] = (
        sys.argv[1] if len(sys.argv) > 1 else f"sqlite:///{scratch.name}/bench.sqlite3"
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kimichat.settings")
    # Measured as deployed: without DEBUG's query log (which needs a key of its own then).
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("SECRET_KEY", "bench")
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection

    from uploads import retrieval
    from uploads.models import Passage, UploadedFile

    call_command("migrate", verbosity=0)
    rng = random.Random(7)
    words = vocabulary(rng)
    owner = User.objects.create(username=f"bench-retrieval-{rng.random()}")
    texts = ["\n".join(page(rng, words, n) for n in range(1, PAGES + 1)) for _ in range(DOCUMENTS)]
    files = [
        UploadedFile.objects.create(
            owner=owner,
            name=f"manual-{i}.pdf",
            file=f"bench/{i}.pdf",
            size=len(text),
            sha256=f"{rng.getrandbits(128):032x}{i}",
            kind="pdf",
            content_type="application/pdf",
            status="ready",
            text=text,
            pages=PAGES,
        )
        for i, text in enumerate(texts)
    ]

    started, cpu, server = time.perf_counter(), time.process_time(), server_cpu()
    for file, text in zip(files, texts, strict=True):
        retrieval.passages_build(file=file, text=text)
    build = time.perf_counter() - started
    cpu, server = time.process_time() - cpu, server_cpu() - server
    passages = Passage.objects.filter(file__in=files).count()

    ids = [f.pk for f in files]
    questions = [question(rng, words) for _ in range(QUESTIONS)]
    retrieval.search(file_ids=ids, query=questions[0])  # warm the caches
    searches, selections, found = [], [], 0
    for text in questions:
        started = time.perf_counter()
        hits = retrieval.search(file_ids=ids, query=text, limit=retrieval.SEARCHED)
        searches.append((time.perf_counter() - started) * 1000)
        found += bool(hits)
        started = time.perf_counter()
        retrieval.select(files=files, query=text, tokens=90_000)
        selections.append((time.perf_counter() - started) * 1000)

    print(f"Retrieval on {connection.vendor} ({DOCUMENTS} documents x {PAGES} pages)")
    print(
        f"  index build: {passages:,} passages from {DOCUMENTS * PAGES:,} pages in {build:.2f} s"
        f" -> {DOCUMENTS * PAGES / build:,.0f} pages/s, {passages / build:,.0f} passages/s"
    )
    print(
        f"  index build CPU: {cpu:.2f} s here"
        + (f", {server:.2f} s in the server" if server else "")
        + f" -> {DOCUMENTS * PAGES / (cpu + server):,.0f} pages per CPU second"
    )
    print(
        f"  search ({QUESTIONS} questions over {passages:,} passages, top {retrieval.SEARCHED}):"
        f" p50 {statistics.median(searches):.1f} ms, p99 {percentile(searches, 99):.1f} ms"
        f" ({found} of {QUESTIONS} found passages)"
    )
    print(
        "  select (search + load + fill 90,000 tokens):"
        f" p50 {statistics.median(selections):.1f} ms, p99 {percentile(selections, 99):.1f} ms"
    )
    Passage.objects.filter(file__in=files).delete()
    UploadedFile.objects.filter(owner=owner).delete()
    owner.delete()
    scratch.cleanup()


if __name__ == "__main__":
    main()
