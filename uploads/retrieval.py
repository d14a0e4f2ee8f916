"""Questions over documents too long to send whole: each read file is split into passages that
know where they came from (file, page, sheet or slide), the passages are indexed for full-text
search, and the ones most relevant to a question are picked to fill the room there is.

The index is SQLite's FTS5 (ranked by BM25) or, on PostgreSQL, a GIN index over a stored
`to_tsvector('simple', …)` column (ranked by ts_rank_cd). Both index the same pre-tokenized terms:
lowercased words, and overlapping character pairs for Chinese, Japanese and Korean, which
are written without spaces. So a search means the same on both: passages sharing terms with
the question, the best first."""

import re
from dataclasses import dataclass

from django.db import connection

from kimi import catalogue
from uploads.models import Passage, UploadedFile

PASSAGE_CHARS = 1200  # about 400 tokens of English, 800 of Chinese
SEARCHED = 200  # passages considered for one question: far more than a window takes
MARKER = re.compile(r"^\[(Page (\d+)|Sheet: (.+)|Slide (\d+))\]$", re.M)
WORD = re.compile(r"[^\W_]+")
RUNS = re.compile(f"{catalogue.CJK.pattern}+|(?:(?!{catalogue.CJK.pattern}).)+")
# Terms too common to say anything about a passage.
STOP = frozenset(
    "a an and are as at be by for from how in is it of on or that the this to was what when "
    "where which who why with 的 了 是 在 和 有 吗 呢 么".split()
)


def terms(text: str) -> list[str]:
    """Lowercased words; a run of CJK characters as its overlapping pairs (one alone as
    itself)."""
    found = []
    for word in WORD.findall(text.lower()):
        for run in RUNS.findall(word):
            if not catalogue.CJK.match(run):
                found.append(run)
            elif len(run) == 1:
                found.append(run)
            else:
                found += [run[i : i + 2] for i in range(len(run) - 1)]
    return found


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
    """Index a file's text (again): its passages replace any it had."""
    Passage.objects.filter(file=file).delete()
    passages = [
        Passage(
            file=file,
            ordinal=i,
            locator=chunk.locator,
            page=chunk.page,
            text=chunk.text,
            terms=" ".join(terms(chunk.text)),
        )
        for i, chunk in enumerate(split(text))
    ]
    Passage.objects.bulk_create(passages, batch_size=500)
    return len(passages)


@dataclass
class Hit:
    passage: Passage
    score: float  # higher is more relevant


def search(*, file_ids: list[int], query: str, limit: int = 50) -> list[Hit]:
    """The passages of these files that share terms with `query`, the most relevant first."""
    words = list(dict.fromkeys(t for t in terms(query) if t not in STOP))
    if not words or not file_ids:
        return []
    marks = ", ".join(["%s"] * len(file_ids))
    if connection.vendor == "postgresql":
        sql = f"""
            SELECT p.id, ts_rank_cd(p.terms_tsv, q) AS score
            FROM uploads_passage p, to_tsquery('simple', %s) q
            WHERE p.file_id IN ({marks}) AND p.terms_tsv @@ q
            ORDER BY score DESC, p.id LIMIT %s"""
        match = " | ".join(f"'{w}'" for w in words)
    else:
        sql = f"""
            SELECT p.id, -bm25(uploads_passage_fts) AS score
            FROM uploads_passage_fts JOIN uploads_passage p ON p.id = uploads_passage_fts.rowid
            WHERE uploads_passage_fts MATCH %s AND p.file_id IN ({marks})
            ORDER BY score DESC, p.id LIMIT %s"""
        match = " OR ".join(f'"{w}"' for w in words)
    with connection.cursor() as cursor:
        cursor.execute(sql, [match, *file_ids, limit])
        scores = dict(cursor.fetchall())
    passages = _loaded(Passage.objects.all()).in_bulk(list(scores))
    return [Hit(passages[pk], score) for pk, score in scores.items() if pk in passages]


def _loaded(passages):
    # The file's name, not its whole text (a 500-page document's, for each passage).
    return passages.select_related("file").only(
        "file_id", "ordinal", "locator", "page", "text", "file__name"
    )


@dataclass
class Selection:
    text: str  # the passages as one system message
    sources: list[dict]  # what the answer shows: file, name, locator, page


def select(*, files: list[UploadedFile], query: str, tokens: int) -> Selection | None:
    """The passages most relevant to `query` that fit in `tokens`, in the order of their
    documents; when none is relevant, the start of each document (None: nothing fits)."""
    for file in files:
        if file.text and not file.passages.exists():
            passages_build(file=file, text=file.text)  # read before passages existed
    found = search(file_ids=[f.pk for f in files], query=query, limit=SEARCHED)
    candidates = [hit.passage for hit in found]
    if not candidates:
        # Nothing matches ("summarise this"): the start of each document, in turn.
        first = Passage.objects.filter(file__in=files, ordinal__lt=SEARCHED // len(files) + 1)
        candidates = sorted(_loaded(first), key=lambda p: (p.ordinal, p.file_id))
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
        source = f"“{passage.file.name}”" + (f", {passage.locator}" if passage.locator else "")
        parts.append(f"[{number}] {source}:\n{passage.text}")
        sources.append(
            {
                "file": passage.file_id,
                "name": passage.file.name,
                "locator": passage.locator,
                "page": passage.page,
            }
        )
    return Selection("\n\n".join(parts), _unique(sources))


def _unique(sources: list[dict]) -> list[dict]:
    seen, unique = set(), []
    for source in sources:
        key = (source["file"], source["locator"])
        if key not in seen:
            seen.add(key)
            unique.append(source)
    return unique
