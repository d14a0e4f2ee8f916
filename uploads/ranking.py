"""BM25 over the postings the database keeps (uploads.models.Posting), scored in SQL that means
the same on SQLite and PostgreSQL: the same terms, the same statistics, the same arithmetic in
double precision, ties broken by the passage's id. So a search ranks alike on both, in every
server process, and a file added or deleted counts from the next question on.

The collection a question is scored against is the files it asks about (a team's library, the
documents referred to): how rare a word is means how rare it is there."""

import heapq
import math
from collections import Counter
from dataclasses import dataclass, field
from operator import itemgetter

from django.db import connection

from uploads import analysis
from uploads.analysis import STOP

K1 = 1.2  # how soon a word repeated in a passage stops adding (the usual value)
B = 0.75  # how much a long passage is discounted (the usual value)
# Pseudo-relevance feedback (expanded): how many of the first search's passages are read,
# how many of their words are added, and the share the words asked keep.
FEEDBACK_PASSAGES, FEEDBACK_TERMS, ORIGINAL_WEIGHT = 10, 10, 0.5
REAL = "CAST(%s AS DOUBLE PRECISION)"  # PostgreSQL would read a bare 1.5 as numeric


def _marks(values: list) -> str:
    return ", ".join(["%s"] * len(values))


def in_files(column: str, file_ids: list[int]) -> tuple[str, list]:
    """The condition that a row is of these files, and its parameters. Written plainly, both
    databases look each file up in the index for each term (a term times a thousand files:
    a thousand look-ups). SQLite, with the `+`, reads each term's postings once and checks
    their files against the list; PostgreSQL, given the list as one array, joins with it
    (and plans in a millisecond, not the ten a thousand constants take). The array is sent
    as its text: the driver would check each of a thousand numbers for quotes, each time."""
    if connection.vendor == "postgresql":
        # A file deleted meanwhile has no id: it matches nothing, as NULL would.
        array = ",".join(map(str, [pk for pk in file_ids if pk is not None]))
        return f"{column} IN (SELECT unnest(%s::bigint[]))", [f"{{{array}}}"]
    return f"+{column} IN ({_marks(file_ids)})", list(file_ids)


@dataclass
class Library:
    """What BM25 needs to know of the files a question searches."""

    file_ids: list[int]
    indexed: set[int]  # the files that have passages
    passages: int
    mean_length: float  # of a passage, in terms
    # The frequencies asked for so far: the expanded question keeps the words asked.
    known: dict[str, int] = field(default_factory=dict)

    def frequencies(self, words: list[str]) -> dict[str, int]:
        """In how many of the passages each word occurs (words in none are left out)."""
        if not words or not self.passages:
            return {}
        unknown = [word for word in words if word not in self.known]
        if unknown:
            files, params = in_files("t.file_id", self.file_ids)
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT t.term, COUNT(*) FROM uploads_posting t"
                    f" WHERE t.term IN ({_marks(unknown)}) AND {files} GROUP BY t.term",
                    [*unknown, *params],
                )
                self.known |= dict.fromkeys(unknown, 0) | dict(cursor.fetchall())
        return {word: self.known[word] for word in words if self.known[word]}


def library(file_ids: list[int]) -> Library:
    files, params = in_files("file_id", file_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT file_id, COUNT(*), SUM(length) FROM uploads_passage WHERE {files}"
            " GROUP BY file_id",
            params,
        )
        rows = cursor.fetchall()
    passages = sum(row[1] for row in rows)
    total = sum(row[2] for row in rows)
    return Library(file_ids, {row[0] for row in rows}, passages, total / (passages or 1))


def idf(passages: int, frequency: int) -> float:
    """Lucene's BM25 IDF: never negative, however common the word."""
    return math.log(1 + (passages - frequency + 0.5) / (frequency + 0.5))


@dataclass
class Weights:
    terms: dict[str, float]  # term -> weight
    mean_length: float  # of a passage, in terms


def weigh(library: Library, asked: Counter) -> Weights:
    """Each asked word's weight: how often it is asked (query term frequency), times its IDF
    among the library's passages."""
    frequencies = library.frequencies(list(asked))
    weights = {
        term: count * idf(library.passages, frequencies[term])
        for term, count in asked.items()
        if term in frequencies
    }
    return Weights(weights, library.mean_length)


def bm25(*, file_ids: list[int], weights: Weights, limit: int) -> dict[int, float]:
    """The `limit` best passages of these files by BM25, best first: passage id -> score."""
    terms = weights.terms
    if not terms or not weights.mean_length:
        return {}
    cases = " ".join(f"WHEN %s THEN {REAL}" for _ in terms)
    files, of_files = in_files("t.file_id", file_ids)
    sql = f"""
        SELECT t.passage_id, SUM(
            (CASE t.term {cases} END) * t.count
            / (t.count + {REAL} + t.length * {REAL})
        ) AS score
        FROM uploads_posting t
        WHERE t.term IN ({_marks(list(terms))}) AND {files}
        GROUP BY t.passage_id
        ORDER BY score DESC, t.passage_id
        LIMIT %s"""
    params: list = []
    for term, weight in terms.items():
        params += [term, weight * (K1 + 1)]
    params += [K1 * (1 - B), K1 * B / weights.mean_length, *terms, *of_files, limit]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return dict(cursor.fetchall())


def expanded(library: Library, asked: Counter, first: dict[int, float]) -> Weights:
    """The question widened by pseudo-relevance feedback (RM3): the words that weigh most in
    the best FEEDBACK_PASSAGES of a first search, in proportion to those passages' scores,
    mixed half and half with the words asked. A question about "slipstream" also finds the
    passages that say "propeller" and "wake" without the word asked. The usual settings of
    the method, not tuned to any collection."""
    top = list(first.items())[:FEEDBACK_PASSAGES]
    total = sum(score for _, score in top)
    if not top or not total:
        return weigh(library, asked)
    scores = dict(top)
    # Their terms, as indexed: read again from their text (ten passages, a millisecond),
    # which spares the postings an index by passage that every posting written would update.
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, text FROM uploads_passage WHERE id IN ({_marks(top)}) ORDER BY id",
            list(scores),
        )
        rows = cursor.fetchall()
    relevance: dict[str, float] = {}
    for passage, text in rows:
        counts = Counter(analysis.terms(text))
        length = counts.total()
        for term, count in counts.items():
            if term not in STOP and len(term) > 1 and not term.isdigit():
                weight = scores[passage] / total * count / length
                relevance[term] = relevance.get(term, 0.0) + weight
    # As Counter.most_common: the first found first among equals.
    best = heapq.nlargest(FEEDBACK_TERMS, relevance.items(), key=itemgetter(1))
    feedback = sum(weight for _, weight in best)
    asked_total = asked.total()
    mixed = {term: ORIGINAL_WEIGHT * count / asked_total for term, count in asked.items()}
    for term, weight in best:
        mixed[term] = mixed.get(term, 0.0) + (1 - ORIGINAL_WEIGHT) * weight / feedback
    frequencies = library.frequencies(list(mixed))
    weights = {
        term: weight * idf(library.passages, frequencies[term])
        for term, weight in mixed.items()
        if term in frequencies
    }
    return Weights(weights, library.mean_length)
