"""Does team document Q&A pick the right passages? `python -m bench.quality DIR` loads a test
collection with human relevance judgments into a team library through the product's own upload
path (file_create, then file_read), asks every query as an `@team` question through the
product's own reference resolution and passage selection (retrieval.select), and scores the
documents the selection ranks against the judgments: nDCG@10, MAP@100 and Recall@100, with the
selection's median and p90 time.

DIR holds either the Cranfield layout (`cran.all.1400`, `cran.qry`, `cranqrel`) or the SMART
layout (`X.ALL`, `X.QRY`, `X.REL`, as CISI, MED and CACM ship). It runs on a fresh SQLite
database, or on the one DATABASE_URL names (use a scratch PostgreSQL database: it is migrated,
and the library is deleted afterwards).
"""

import math
import os
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.harness import percentile, server_cpu

ROOM = 100_000  # tokens for passages: a large model's share after the question
FIELD = re.compile(r"^\.([A-Z])\b ?(.*)$", re.M)


@dataclass
class Collection:
    documents: dict[str, str]  # id -> title and text
    queries: list[tuple[str, str]]  # (id, text), in the file's order
    judgments: dict[str, dict[str, float]]  # query id -> document id -> gain (> 0: relevant)


def records(path: Path) -> list[tuple[str, dict[str, str]]]:
    """A SMART-style file's records: `.I id` then fields `.T`, `.W`, … each to the next."""
    data = path.read_bytes()
    try:
        text = data.decode()
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # the classic collections' own
    found: list[tuple[str, dict[str, str]]] = []
    marks = list(FIELD.finditer(text))
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        body = (mark.group(2) + text[mark.end() : end]).strip()
        if mark.group(1) == "I":
            found.append((body.split()[0], {}))
        elif found:
            found[-1][1][mark.group(1)] = body
    return found


def document(fields: dict[str, str]) -> str:
    return "\n\n".join(fields[f] for f in "TW" if fields.get(f))


def load(folder: Path) -> Collection:
    if (folder / "cran.all.1400").exists():
        documents = {i: document(f) for i, f in records(folder / "cran.all.1400")}
        # Query ids in cran.qry skip numbers; cranqrel numbers them 1, 2, 3… in file order.
        asked = records(folder / "cran.qry")
        queries = [(str(n), fields.get("W", "")) for n, (_, fields) in enumerate(asked, 1)]
        judgments: dict[str, dict[str, float]] = {}
        for line in (folder / "cranqrel").read_text().splitlines():
            query, doc, code = line.split()[:3]
            # Codes 1 (a complete answer) to 4; -1: judged not relevant.
            if 1 <= int(code) <= 4:
                judgments.setdefault(query, {})[doc] = 5 - int(code)
        return Collection(documents, queries, judgments)
    stem = next(p.stem for p in folder.iterdir() if p.suffix == ".ALL")
    documents = {i: document(f) for i, f in records(folder / f"{stem}.ALL")}
    queries = [(i, f.get("W", "")) for i, f in records(folder / f"{stem}.QRY")]
    judgments = {}
    for line in (folder / f"{stem}.REL").read_text().splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        # MED: "query 0 document 1"; CISI and CACM: "query document 0 0".
        query, doc = (parts[0], parts[2]) if parts[1] == "0" and len(parts) >= 4 else parts[:2]
        judgments.setdefault(str(int(query)), {})[str(int(doc))] = 1
    queries = [(str(int(q)), text) for q, text in queries]
    return Collection(documents, queries, judgments)


def ndcg(ranked: list[str], gains: dict[str, float], depth: int = 10) -> float:
    dcg = sum(gains.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:depth]))
    ideal = sorted(gains.values(), reverse=True)[:depth]
    return dcg / sum(g / math.log2(i + 2) for i, g in enumerate(ideal))


def average_precision(ranked: list[str], relevant: set[str], depth: int = 100) -> float:
    hits, total = 0, 0.0
    for i, doc in enumerate(ranked[:depth], 1):
        if doc in relevant:
            hits += 1
            total += hits / i
    return total / len(relevant)


def recall(ranked: list[str], relevant: set[str], depth: int = 100) -> float:
    return len(relevant & set(ranked[:depth])) / len(relevant)


def setup() -> tempfile.TemporaryDirectory:
    scratch = tempfile.TemporaryDirectory()
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{scratch.name}/bench.sqlite3")
    os.environ["MEDIA_ROOT"] = f"{scratch.name}/media"
    os.environ["USER_MAX_FILES"] = "1000000"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kimichat.settings")
    # Measured as deployed: without DEBUG's query log (which needs a key of its own then).
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("SECRET_KEY", "bench")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return scratch


def read(file) -> None:
    """services.file_read, but in this process: the same extraction, index and update, without
    the child process each reading starts (a fraction of a second of CPU at the lowest
    priority: on a busy machine, an hour for a collection, measuring nothing of retrieval)."""
    from kimi import catalogue
    from uploads import extract, retrieval, services
    from uploads.models import UploadedFile

    with services.local_copy(file) as path:
        extracted = extract.extract(path, file.kind)
    retrieval.passages_build(file=file, text=extracted.text)
    services.file_update(
        file=file,
        status=UploadedFile.Status.READY,
        text=extracted.text,
        pages=extracted.pages,
        tokens=catalogue.estimate_tokens(extracted.text) if extracted.text else 0,
    )


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python -m bench.quality DIR")
    collection = load(Path(sys.argv[1]))
    scratch = setup()
    from django.contrib.auth.models import User
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.db import connection

    from teams import services as teams
    from uploads import references, retrieval, services
    from uploads.models import UploadedFile

    user = User.objects.create(username=f"bench-quality-{time.time_ns()}")
    team = teams.team_create(user=user, name=f"Library {user.pk}")
    started = time.perf_counter()
    names = {}
    for doc, text in collection.documents.items():
        upload = SimpleUploadedFile(f"{doc}.txt", (text or "(empty)").encode())
        saved = services.file_create(owner=user, upload=upload, team=team)
        read(saved.file)
        names[saved.file.pk] = doc
    loaded = time.perf_counter() - started

    scores: dict[str, list[float]] = {"ndcg": [], "map": [], "recall": []}
    times, cpu_times, server_times = [], [], []
    for query, text in collection.queries:
        gains = collection.judgments.get(query)
        if not gains:
            continue
        question = f"@{team.slug} {' '.join(text.split())}"
        files = references.resolve(user=user, text=question)
        server = server_cpu()
        started, cpu = time.perf_counter(), time.process_time()
        # As the conversation does: the question without its references.
        selection = retrieval.select(files=files, query=re.sub(r"@\S+", " ", question), tokens=ROOM)
        times.append((time.perf_counter() - started) * 1000)
        cpu_times.append((time.process_time() - cpu) * 1000)
        server_times.append((server_cpu() - server) * 1000)
        ranked = [names[f] for f in (selection.ranking if selection else [])]
        relevant = {d for d, g in gains.items() if g > 0}
        scores["ndcg"].append(ndcg(ranked, gains))
        scores["map"].append(average_precision(ranked, relevant))
        scores["recall"].append(recall(ranked, relevant))

    mean = {k: statistics.fmean(v) for k, v in scores.items()}
    p50, p90 = statistics.median(times), percentile(times, 90)
    print(
        f"{sys.argv[1]} on {connection.vendor}: {len(collection.documents):,} documents"
        f" loaded in {loaded:.1f} s, {len(times)} judged queries"
    )
    # On a busy machine the time waited for a core counts in the wall clock: the CPU time
    # this process spent (all of it on SQLite, the client's share on PostgreSQL) does not,
    # nor does a local PostgreSQL server's (counted in ticks: a mean, not a median).
    print(
        f"select CPU time: p50 {statistics.median(cpu_times):.1f} ms,"
        f" p90 {percentile(cpu_times, 90):.1f} ms"
        + (
            f"; the server's, mean {statistics.fmean(server_times):.1f} ms"
            if any(server_times)
            else ""
        )
    )
    print(
        f"nDCG@10={mean['ndcg']:.3f} MAP@100={mean['map']:.3f} R@100={mean['recall']:.3f}"
        f" select_p50_ms={p50:.1f} select_p90_ms={p90:.1f}"
    )
    UploadedFile.objects.filter(team=team).delete()
    team.delete()
    user.delete()
    scratch.cleanup()


if __name__ == "__main__":
    main()
