"""Questions over documents too long to send whole: each read file is split into passages that
know where they came from (file, page, sheet or slide), the passages' terms are indexed
(uploads.analysis, uploads.models.Posting), and the ones most relevant to a question by BM25
(uploads.ranking) are picked to fill the room there is. The index is the database's own
tables, the same on SQLite and PostgreSQL, so a search means the same on both."""

import re
from collections import Counter
from dataclasses import dataclass
from itertools import repeat

from django.db import transaction

from kimi import catalogue
from uploads import analysis, embeddings, ranking
from uploads.models import Passage, PassageVector, Posting, UploadedFile

PASSAGE_CHARS = 1200  # about 400 tokens of English, 800 of Chinese
SEARCHED = 200  # passages considered for one question: far more than a window takes
FEEDBACK = ranking.FEEDBACK_PASSAGES
MARKER = re.compile(r"^\[(Page (\d+)|Sheet: (.+)|Slide (\d+))\]$", re.M)


@dataclass
class Chunk:
    locator: str  # "Page 3", "Sheet: Q3", "Slide 2", or "" for a text file
    page: int | None  # the page or slide number, to link to
    text: str


def split(text: str) -> list[Chunk]:
    """Passages of at most about PASSAGE_CHARS, cut at paragraph (then line, then word)
    boundaries, never across a page, sheet or slide."""
    chunks: list[Chunk] = []
    sections: list[tuple[str, int | None, str]] = []
    matches = list(MARKER.finditer(text))
    if not matches or matches[0].start() > 0:
        end = matches[0].start() if matches else len(text)
        sections.append(("", None, text[:end]))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        number = match.group(2) or match.group(4)
        sections.append((match.group(1), int(number) if number else None, text[match.end() : end]))
    for locator, page, body in sections:
        for piece in _pieces(body.strip()):
            chunks.append(Chunk(locator, page, piece))
    return chunks


def _pieces(text: str) -> list[str]:
    pieces: list[str] = []
    current = ""
    for paragraph in re.split(r"\n\s*\n", text):
        for part in _cut(paragraph.strip()):
            if current and len(current) + len(part) + 2 > PASSAGE_CHARS:
                pieces.append(current)
                current = ""
            current = f"{current}\n\n{part}" if current else part
    if current:
        pieces.append(current)
    return pieces


def _cut(paragraph: str) -> list[str]:
    """A paragraph longer than a passage, in parts: at line breaks, else at spaces, else
    anywhere (Chinese has no spaces)."""
    if len(paragraph) <= PASSAGE_CHARS:
        return [paragraph] if paragraph else []
    parts, current = [], ""
    for token in re.split(r"(\n|(?<=[。！？.!?])\s*| )", paragraph):
        if not token:
            continue
        while len(token) > PASSAGE_CHARS:
            parts.append(token[:PASSAGE_CHARS])
            token = token[PASSAGE_CHARS:]
        if len(current) + len(token) > PASSAGE_CHARS:
            parts.append(current.strip())
            current = ""
        current += token
    if current.strip():
        parts.append(current.strip())
    return [p for p in parts if p]


def passages_build(*, file: UploadedFile, text: str) -> int:
    """Index a file's text (again): its passages, their postings and vectors replace any it
    had, at once for a question (one transaction, which also spares a commit per posting).
    The vectors are made before it: an embeddings server may take its time, and no other
    write should wait for it."""
    chunks = split(text)
    vectors = embeddings.embed([chunk.text for chunk in chunks]) if chunks else None
    with transaction.atomic():
        return _passages_write(file, chunks, vectors)


def _passages_write(
    file: UploadedFile, chunks: list[Chunk], vectors: embeddings.Vectors | None
) -> int:
    # Each in one statement (postings and vectors by their file), before the passages.
    Posting.objects.filter(file=file).delete()
    PassageVector.objects.filter(file=file).delete()
    Passage.objects.filter(file=file).delete()
    counted = [Counter(analysis.terms(chunk.text)) for chunk in chunks]
    passages = Passage.objects.bulk_create(
        [
            Passage(
                file=file,
                ordinal=i,
                locator=chunk.locator,
                page=chunk.page,
                text=chunk.text,
                length=counts.total(),
            )
            for i, (chunk, counts) in enumerate(zip(chunks, counted, strict=True))
        ],
        batch_size=500,
    )
    rows: list[tuple[str, int, int, int, int]] = []
    for passage, counts in zip(passages, counted, strict=True):
        # (term, file, passage, count, length), a row per term: zip ends with the terms.
        same = repeat(file.id), repeat(passage.id), counts.values(), repeat(passage.length)
        rows += zip(counts, *same, strict=False)
    Posting.objects.write(rows)
    embeddings.vectors_store(passages, vectors)
    return len(passages)


@dataclass
class Hit:
    passage: Passage
    score: float  # higher is more relevant


def search(*, file_ids: list[int], query: str, limit: int = 50) -> list[Hit]:
    """The passages of these files that share terms with `query`, the most relevant first."""
    if not file_ids:
        return []
    scores = _scores(ranking.library(file_ids), query, limit)
    passages = _loaded(Passage.objects.all()).in_bulk(list(scores))
    return [Hit(passages[pk], score) for pk, score in scores.items() if pk in passages]


def _scores(library: ranking.Library, query: str, limit: int) -> dict[int, float]:
    """Three rankings of the library's passages fused by reciprocal rank: BM25 of the words
    asked, BM25 of the question widened by feedback (RM3), and nearness in meaning
    (uploads/embeddings.py). Without vectors, the widened BM25 alone. Meaning reorders and
    extends what the words found; a question none of whose words the library has finds
    nothing ("summarise it": select() then sends the start of each document)."""
    asked = Counter(analysis.query_terms(query))
    if not asked:
        return {}
    depth = max(limit, SEARCHED)
    weights = ranking.weigh(library, asked)
    first = ranking.bm25(file_ids=library.file_ids, weights=weights, limit=depth)
    if not first:
        return {}
    weights = ranking.expanded(library, asked, first)
    widened = ranking.bm25(file_ids=library.file_ids, weights=weights, limit=depth)
    meant = embeddings.similar(file_ids=library.file_ids, query=query, limit=depth)
    if not meant:
        return dict(list(widened.items())[:limit])
    return embeddings.fused([first, widened, meant], limit)


def _loaded(passages):
    # The file's name, not its whole text (a 500-page document's, for each passage).
    return passages.select_related("file").only(
        "file_id", "ordinal", "locator", "page", "text", "file__name"
    )


@dataclass
class Selection:
    text: str  # the passages as one system message
    sources: list[dict]  # what the answer shows: file, name, locator, page
    ranking: list[int]  # the files of the passages found, the most relevant first


def select(*, files: list[UploadedFile], query: str, tokens: int) -> Selection | None:
    """The passages most relevant to `query` that fit in `tokens`, in the order of their
    documents; when none is relevant, the start of each document (None: nothing fits)."""
    library = ranking.library([f.pk for f in files])
    unindexed = [f for f in files if f.pk not in library.indexed and f.text]
    for file in unindexed:
        passages_build(file=file, text=file.text)  # read before passages (as now) existed
    if unindexed:
        library = ranking.library(library.file_ids)
    scores = _scores(library, query, SEARCHED)
    # The file's name is known: each passage is loaded alone (with its text: it may go),
    # whole (deferring its length costs more than reading it) and in no order (the scores').
    names = {f.pk: f.name for f in files}
    found = Passage.objects.order_by().in_bulk(scores)
    candidates = [found[pk] for pk in scores if pk in found]
    if not candidates:
        # Nothing matches ("summarise this"): the start of each document, in turn.
        first = Passage.objects.filter(file__in=files, ordinal__lt=SEARCHED // len(files) + 1)
        candidates = sorted(first, key=lambda p: (p.ordinal, p.file_id))
    header = (
        "The documents referred to are too long to send whole. These passages from them are "
        "the most relevant to the question, each with its source; answer from them, and say "
        "which sources you used."
    )
    room = tokens - catalogue.estimate_tokens(header)
    chosen: list[Passage] = []
    for passage in candidates:
        if room < 100:
            break
        cost = catalogue.estimate_tokens(passage.text) + 10
        if cost <= room:
            chosen.append(passage)
            room -= cost
    if not chosen:
        return None
    chosen.sort(key=lambda p: (p.file_id, p.ordinal))
    parts, sources = [header], []
    for number, passage in enumerate(chosen, 1):
        part, source = cited(number, passage, names[passage.file_id])
        parts.append(part)
        sources.append(source)
    ranked = list(dict.fromkeys(found[pk].file_id for pk in scores if pk in found))
    return Selection("\n\n".join(parts), unique_sources(sources), ranked)


def cited(number: int, passage: Passage, name: str) -> tuple[str, dict]:
    """A passage as sent to Kimi, numbered with its source, and the source as the answer
    shows it."""
    where = f"“{name}”" + (f", {passage.locator}" if passage.locator else "")
    source = {
        "file": passage.file_id,
        "name": name,
        "locator": passage.locator,
        "page": passage.page,
    }
    return f"[{number}] {where}:\n{passage.text}", source


def unique_sources(sources: list[dict]) -> list[dict]:
    """Each source once (a file's page, sheet or slide), in the order first given."""
    seen, unique = set(), []
    for source in sources:
        key = (source["file"], source["locator"])
        if key not in seen:
            seen.add(key)
            unique.append(source)
    return unique
