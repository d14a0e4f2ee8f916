"""Passages found by meaning (uploads/embeddings.py), fused with BM25: the local model loads
without the network, a question in other words finds its passage, the fusion is reciprocal
rank fusion of the same two runs on every database (this module runs on SQLite and
PostgreSQL), a deleted file leaves no vectors, and an operator's embeddings server
(EMBEDDINGS_URL, here a stand-in on loopback) is used, and fails without losing an upload or a
question."""

import logging
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from tests.helpers.embeddings_stub import EmbeddingsStub
from uploads import analysis, embeddings, ranking, retrieval, services
from uploads.models import Passage, PassageVector, UploadedFile

pytestmark = pytest.mark.django_db

LIBRARY = {
    "wings.txt": "Flow over swept wings separates early at high angles of attack.",
    "hotel.txt": "The minimum stay in the company's hotel is one night.",
    "leave.txt": "Annual leave: every employee has 25 days of paid holiday a year.",
    "passwords.txt": "Passwords need at least twelve characters.",
    "泵.txt": "离心泵的最大工作压力为七巴，超过时安全阀会自动打开。",
    "住宿.txt": "一线城市住宿费每晚不超过六百元，其他城市每晚不超过四百元。"
    "超出部分由员工自行承担，特殊情况须经部门负责人书面批准。",
    "预订.txt": "出差须通过公司差旅平台预订酒店和机票。",
}
# No word of it is in passwords.txt; "minimum" is in hotel.txt.
OTHER_WORDS = "What is the minimum length of a login secret?"


def upload(owner, name: str, text: str) -> UploadedFile:
    saved = services.file_create(owner=owner, upload=SimpleUploadedFile(name, text.encode()))
    services.file_read(file_id=saved.file.pk)
    return UploadedFile.objects.get(pk=saved.file.pk)


def library(owner) -> dict[str, UploadedFile]:
    return {name: upload(owner, name, text) for name, text in LIBRARY.items()}


def names(files: dict[str, UploadedFile], query: str) -> list[str]:
    by_id = {f.pk: name for name, f in files.items()}
    hits = retrieval.search(file_ids=[f.pk for f in files.values()], query=query)
    return [by_id[h.passage.file_id] for h in hits]


def bm25_runs(files: dict[str, UploadedFile], query: str) -> list[dict[int, float]]:
    """BM25 of the words asked, then of the question widened by feedback (RM3)."""
    found = ranking.library([f.pk for f in files.values()])
    asked, depth = Counter(analysis.query_terms(query)), retrieval.SEARCHED
    first = ranking.bm25(file_ids=found.file_ids, weights=ranking.weigh(found, asked), limit=depth)
    weights = ranking.expanded(found, asked, first)
    return [first, ranking.bm25(file_ids=found.file_ids, weights=weights, limit=depth)]


def bm25_alone(files: dict[str, UploadedFile], query: str) -> dict[int, float]:
    return bm25_runs(files, query)[1]


def test_the_local_model_loads_from_its_package_with_the_network_cut_off(tmp_path):
    """In a process of its own where every connection fails and Hugging Face is unreachable:
    the model loads, embeds, and finds no file it would have to fetch."""
    script = (
        "import socket\n"
        "def refuse(*args, **kwargs):\n"
        "    raise OSError('no network in this test')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "import django\n"
        "django.setup()\n"
        "from uploads import embeddings\n"
        "print(embeddings.embed(['flow over a wing']).shape)\n"
    )
    unreachable = "http://127.0.0.1:9"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "kimichat.settings",
        "HF_HUB_OFFLINE": "1",
        "HTTPS_PROXY": unreachable,
        "HTTP_PROXY": unreachable,
        "HOME": str(tmp_path),  # no ~/.cache/wordllama to find weights in
        "EMBEDDINGS_URL": "",
    }
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=root, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(1, 256)"
    assert not (tmp_path / ".cache").exists()


def test_the_local_model_raises_rather_than_download_a_file_it_lacks():
    import wordllama

    folder = Path(wordllama.__file__).parent
    with pytest.raises(FileNotFoundError, match="downloads are disabled"):
        # 512 dimensions: a file the wheel does not ship.
        wordllama.WordLlama.load(dim=512, cache_dir=folder, disable_download=True)


def test_a_question_in_other_words_finds_its_passage(alice):
    files = library(alice)
    passwords = Passage.objects.get(file=files["passwords.txt"]).pk
    assert passwords not in bm25_alone(files, OTHER_WORDS)
    assert names(files, OTHER_WORDS)[:2] == ["hotel.txt", "passwords.txt"]
    # Asked of a hotel stay: no character pair of it is in 住宿.txt (docs/benchmarks.md);
    # "酒店" is in 预订.txt.
    question = "住酒店超标了，多出来的钱谁出？"
    accommodation = Passage.objects.get(file=files["住宿.txt"]).pk
    assert accommodation not in bm25_alone(files, question)
    assert "住宿.txt" in names(files, question)[:2]
    # A question none of whose words the library has finds nothing, by meaning neither
    # (select() then sends the start of each document; Kimi's search says so).
    assert names(files, "Summarise it") == []


def test_the_fusion_is_reciprocal_rank_fusion_of_bm25_rm3_and_cosine_on_every_database(alice):
    files = library(alice)
    query = "How many days of holiday does a worker get, and how many nights at the hotel?"
    by_id = {p.pk: p for p in Passage.objects.all()}
    first, widened = bm25_runs(files, query)
    model = embeddings._local()
    vectors = model.embed([by_id[pk].text for pk in sorted(by_id)] + [query], norm=True)
    cosines = {pk: vectors[i] @ vectors[-1] for i, pk in enumerate(sorted(by_id))}
    meaning = sorted(cosines, key=lambda pk: (-cosines[pk], pk))
    rrf: Counter = Counter()
    for run in (list(first), list(widened), meaning):
        for rank, pk in enumerate(run, 1):
            rrf[pk] += 1 / (60 + rank)
    expected = [by_id[pk].file.name for pk, _ in sorted(rrf.items(), key=lambda i: (-i[1], i[0]))]
    assert names(files, query) == expected
    assert set(expected[:2]) == {"leave.txt", "hotel.txt"}


def test_a_deleted_file_leaves_no_vectors_and_no_process_keeps_finding_it(alice):
    files = library(alice)
    assert PassageVector.objects.count() == len(LIBRARY)
    vector = PassageVector.objects.get(file=files["passwords.txt"])
    assert vector.model == embeddings.LOCAL_MODEL
    assert np.frombuffer(vector.vector, dtype=np.float16).shape == (256,)
    assert "passwords.txt" in names(files, OTHER_WORDS)  # its vectors now kept in memory
    services.file_delete(file=files["passwords.txt"])
    assert not PassageVector.objects.filter(file_id=files["passwords.txt"].pk).exists()
    assert "passwords.txt" not in names(files, OTHER_WORDS)
    # Read again: new passages, new vectors, found again (what is kept in memory is checked).
    files["passwords.txt"] = upload(alice, "passwords.txt", LIBRARY["passwords.txt"])
    assert "passwords.txt" in names(files, OTHER_WORDS)


@pytest.fixture(scope="module")
def embeddings_stub():
    stub = EmbeddingsStub().start_in_thread()
    yield stub
    stub.stop()


def configure(stub: EmbeddingsStub, settings) -> EmbeddingsStub:
    """The stand-in, reset, as the operator's embeddings server: its model knows that a login
    secret is a password, and that a length is counted in characters."""
    stub.status, stub.hang_up, stub.dimensions = 200, False, 384
    stub.same = {"secret": "passwords", "login": "passwords", "length": "characters"}
    stub.seen.clear()
    settings.EMBEDDINGS_URL = stub.base_url
    settings.EMBEDDINGS_MODEL = "team-embedder"
    settings.EMBEDDINGS_KEY = "sk-embed"
    return stub


@pytest.fixture
def server(embeddings_stub, settings):
    return configure(embeddings_stub, settings)


def test_an_embeddings_server_replaces_the_local_model(alice, server):
    files = library(alice)
    vectors = PassageVector.objects.all()
    assert {v.model for v in vectors} == {"team-embedder"}
    assert {len(v.vector) for v in vectors} == {384 * 2}
    assert names(files, OTHER_WORDS)[:2] == ["hotel.txt", "passwords.txt"]
    assert server.seen[-1].inputs == [OTHER_WORDS]
    assert {s.model for s in server.seen} == {"team-embedder"}
    assert server.seen[0].authorization == "Bearer sk-embed"
    # The operator's model may know Chinese: it is asked.
    assert names(files, "离心泵的压力是多少？")[0] == "泵.txt"
    assert server.seen[-1].inputs == ["离心泵的压力是多少？"]


@pytest.mark.parametrize("failure", ["status", "hang_up"])
def test_a_failing_embeddings_server_loses_no_upload_and_no_question(
    alice, server, failure, caplog
):
    setattr(server, failure, 503 if failure == "status" else True)
    with caplog.at_level(logging.WARNING, logger="uploads.embeddings"):
        files = library(alice)
        assert {f.status for f in files.values()} == {UploadedFile.Status.READY}
        assert not PassageVector.objects.exists()
        assert names(files, "hotel") == ["hotel.txt"]
    assert "The embeddings server failed" in caplog.text
    assert len(server.seen) >= len(LIBRARY) + 1  # every upload and the question tried it
    with pytest.raises(CommandError, match="model failed"):
        call_command("embed")
    # Back up: `manage.py embed` gives the passages their vectors.
    setattr(server, failure, 200 if failure == "status" else False)
    call_command("embed")
    assert PassageVector.objects.filter(model="team-embedder").count() == len(LIBRARY)
    assert names(files, OTHER_WORDS)[:2] == ["hotel.txt", "passwords.txt"]


def test_vectors_of_another_model_are_ignored_until_recomputed(alice, settings, embeddings_stub):
    files = library(alice)  # the local model's vectors
    configure(embeddings_stub, settings)
    ids = [f.pk for f in files.values()]
    assert embeddings.similar(file_ids=ids, query=OTHER_WORDS, limit=10) == {}
    assert names(files, OTHER_WORDS) == ["hotel.txt"]  # by its words alone
    call_command("embed")
    assert set(PassageVector.objects.values_list("model", flat=True)) == {"team-embedder"}
    assert len(embeddings.similar(file_ids=ids, query=OTHER_WORDS, limit=10)) == len(LIBRARY)
    # The same name, another size (the server's model changed under it): ignored again.
    embeddings_stub.dimensions = 128
    assert embeddings.similar(file_ids=ids, query=OTHER_WORDS, limit=10) == {}
    call_command("embed")
    assert {len(v.vector) for v in PassageVector.objects.all()} == {128 * 2}
