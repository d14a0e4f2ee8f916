"""Passages found by what they mean, not only by the words they share with a question: each
passage's embedding is stored with it, a question's is compared with its library's by cosine,
and the passages nearest in meaning are fused with BM25's by reciprocal rank (`fused`).

The model is wordllama (a static embedding model, 256 dimensions, whose 16 MB of weights ship
inside its wheel), loaded once per process from its own package folder with its download
turned off: nothing is fetched at run time. When EMBEDDINGS_URL is set, an OpenAI-compatible
embeddings server the operator runs (TEI, Ollama, vLLM…) replaces it. That server failing
loses nothing: an upload keeps its passages without vectors, a question is answered by BM25
alone, and the log says so.

Vectors are kept per passage with the name of the model that made them (models.PassageVector);
a question reads only those of the model configured now, of the question's own size: others
are ignored (those passages count by their words alone) until `manage.py embed` recomputes
them. A library's vectors are scanned exactly, in numpy: see docs/how-it-works.md, "Retrieval",
for why, and where that stops.
"""

import functools
import logging
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import openai
from django.conf import settings
from django.db import connection

from uploads import ranking
from uploads.models import Passage, PassageVector

log = logging.getLogger(__name__)

LOCAL_MODEL = "wordllama/l2_supercat-256"
BATCH = 32  # texts in one request to the server (TEI's default largest batch)
TIMEOUT = 30.0  # seconds for one request to the server
RRF_K = 60  # reciprocal rank fusion's usual constant (Cormack et al., 2009), not tuned here
CACHED_LIBRARIES = 4  # libraries whose vectors a process keeps in memory, the latest used
STORED = np.float16  # half the bytes of float32; cosines move in the fourth decimal


def model_name() -> str:
    """The model whose vectors count now."""
    return settings.EMBEDDINGS_MODEL if settings.EMBEDDINGS_URL else LOCAL_MODEL


# Unit vectors, float32, a row each.
Vectors = np.ndarray


def embed(texts: list[str]) -> Vectors | None:
    """The texts' unit vectors (float32, a row each); None when the model failed (logged):
    whoever asked goes on with words alone, never losing an upload or a question."""
    try:
        vectors = _remote(texts) if settings.EMBEDDINGS_URL else _local().embed(texts)
    except (openai.OpenAIError, ValueError) as e:
        log.warning("The embeddings server failed (%s): passages found by their words alone", e)
        return None
    except Exception:
        log.exception("The embeddings model failed: passages found by their words alone")
        return None
    vectors = np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


@functools.cache
def _local():
    """wordllama, once per process (a third of a second), from the weights and tokenizer in
    its own package folder. With `disable_download` it raises rather than fetch a missing file
    (its code looks in the package folder, then the cache folder, given as the same one)."""
    import wordllama  # here: its tokenizer and 33 MB of weights only in processes that use them

    folder = Path(wordllama.__file__).parent
    return wordllama.WordLlama.load(
        config="l2_supercat", dim=256, cache_dir=folder, disable_download=True
    )


@functools.lru_cache(maxsize=4)
def _client(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key=key or "none", timeout=TIMEOUT, max_retries=1)


def _remote(texts: list[str]) -> list[list[float]]:
    client = _client(settings.EMBEDDINGS_URL, settings.EMBEDDINGS_KEY)
    vectors: list[list[float]] = []
    for start in range(0, len(texts), BATCH):
        # Floats, not the SDK's default base64: every server that speaks the API takes them.
        answer = client.embeddings.create(
            model=settings.EMBEDDINGS_MODEL,
            input=texts[start : start + BATCH],
            encoding_format="float",
        )
        vectors += [item.embedding for item in sorted(answer.data, key=lambda d: d.index)]
    if len(vectors) != len(texts) or len({len(v) for v in vectors}) > 1:
        raise ValueError("the server's answer does not match the texts sent")
    return vectors


def vectors_build(passages: list[Passage]) -> int:
    """Store the passages' vectors (replacing any they had); how many were stored: none when
    the server failed (the passages are then found by their words alone)."""
    vectors = embed([p.text for p in passages]) if passages else None
    if vectors is None:
        return 0
    PassageVector.objects.filter(passage__in=passages).delete()
    return vectors_store(passages, vectors)


def vectors_store(passages: list[Passage], vectors: Vectors | None) -> int:
    """Store vectors made for these passages (none: the model failed); how many."""
    if vectors is None:
        return 0
    model = model_name()
    PassageVector.objects.bulk_create(
        [
            PassageVector(passage=p, file_id=p.file_id, model=model, vector=v.astype(STORED))
            for p, v in zip(passages, vectors, strict=True)
        ],
        batch_size=500,
    )
    return len(passages)


def similar(*, file_ids: list[int], query: str, limit: int) -> dict[int, float]:
    """The `limit` passages of these files nearest in meaning to `query`, best first: passage
    id -> cosine. Empty when the model failed, or none has a vector of this model and size."""
    asked = embed([query])
    if asked is None:
        return {}
    ids, matrix = _library(file_ids, model_name(), asked.shape[1])
    if not len(ids):
        return {}
    # Not `matrix @ …`: that calls OpenBLAS, whose threads, woken for a product this small,
    # spin for longer than it takes (a selection's CPU time doubled).
    cosines = np.einsum("ij,j->i", matrix, asked[0])
    top = np.argpartition(-cosines, limit)[:limit] if len(cosines) > limit else np.arange(len(ids))
    best = top[np.lexsort((ids[top], -cosines[top]))]  # ties: the lower passage id first
    return {int(ids[i]): float(cosines[i]) for i in best}


_cache: OrderedDict[tuple, tuple[tuple, np.ndarray, np.ndarray]] = OrderedDict()
_cache_lock = threading.Lock()


def _library(file_ids: list[int], model: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The passage ids (ascending) and vectors (float32 rows) of these files made by `model`
    with `size` dimensions (the server's model may have changed under its name: vectors of
    another size are ignored). Kept in memory for the next question once this process has
    checked that they are still the ones stored: any vector added or deleted, here or by
    another process, changes their count or their highest id (ids are never reused)."""
    files, params = ranking.in_files("file_id", file_ids)
    where = f"WHERE {files} AND model = %s"
    key = (connection.alias, model, size, frozenset(file_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*), MAX(id) FROM uploads_passagevector {where}", (*params, model)
        )
        stamp = tuple(cursor.fetchone())
        with _cache_lock:
            kept = _cache.get(key)
            if kept and kept[0] == stamp:
                _cache.move_to_end(key)
                return kept[1], kept[2]
        cursor.execute(
            f"SELECT id, passage_id, vector FROM uploads_passagevector {where} ORDER BY passage_id",
            (*params, model),
        )
        rows = cursor.fetchall()
    stamp = (len(rows), max((row[0] for row in rows), default=None))
    width = size * np.dtype(STORED).itemsize
    rows = [row for row in rows if len(row[2]) == width]
    ids = np.array([row[1] for row in rows], dtype=np.int64)
    matrix = np.frombuffer(b"".join(bytes(row[2]) for row in rows), dtype=STORED)
    matrix = matrix.reshape(len(rows), size).astype(np.float32)
    with _cache_lock:
        _cache[key] = (stamp, ids, matrix)
        _cache.move_to_end(key)
        while len(_cache) > CACHED_LIBRARIES:
            _cache.popitem(last=False)
    return ids, matrix


def fused(runs: list[dict[int, float]], limit: int) -> dict[int, float]:
    """Reciprocal rank fusion: each passage scores the sum over the runs that found it of
    1 / (RRF_K + its rank there), best first (ties: the lower passage id). Ranks, not
    scores, so BM25's and cosine's scales need no reconciling."""
    scores: dict[int, float] = {}
    for run in runs:
        for rank, passage in enumerate(run, 1):
            scores[passage] = scores.get(passage, 0.0) + 1 / (RRF_K + rank)
    best = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    return dict(best[:limit])
