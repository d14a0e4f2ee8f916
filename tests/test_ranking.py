"""The ranking's invariants: the forms of a word find each other, Chinese finds Chinese, a deleted
file leaves the index, and the scores are BM25's (the same on SQLite and PostgreSQL: this
module runs on both, against one reference computed here)."""

import math
from collections import Counter

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.services import account_delete
from uploads import analysis, library_search, ranking, retrieval, services
from uploads.models import Passage, Posting, UploadedFile

pytestmark = pytest.mark.django_db

LIBRARY = {
    "wings.txt": "Flow over swept wings separates early at high angles of attack.",
    "nozzles.txt": "Supersonic nozzles: the flowing gas expands and the flows choke.",
    "heat.txt": "Heat transfer in the laminar boundary layer of a flat plate.",
    "slip.txt": "Slipstream effects on a wing: the slipstream raises the lift of the wing.",
    "泵.txt": "离心泵的最大工作压力为七巴，超过时安全阀会自动打开。",
}


def library(owner) -> dict[str, UploadedFile]:
    files = {}
    for name, text in LIBRARY.items():
        saved = services.file_create(owner=owner, upload=SimpleUploadedFile(name, text.encode()))
        services.file_read(file_id=saved.file.pk)
        files[name] = UploadedFile.objects.get(pk=saved.file.pk)
    return files


def names(files: dict[str, UploadedFile], query: str) -> list[str]:
    """The files BM25 finds, widened by feedback, best first: the ranking alone, as search()
    has it without vectors (its fusion with meaning: tests/test_embeddings.py)."""
    by_id = {f.pk: name for name, f in files.items()}
    found = ranking.library([f.pk for f in files.values()])
    asked = Counter(analysis.query_terms(query))
    first = ranking.bm25(file_ids=found.file_ids, weights=ranking.weigh(found, asked), limit=10)
    weights = ranking.expanded(found, asked, first)
    scores = ranking.bm25(file_ids=found.file_ids, weights=weights, limit=50)
    files_of = dict(Passage.objects.filter(pk__in=scores).values_list("pk", "file_id"))
    return [by_id[files_of[pk]] for pk in scores]


def test_a_question_about_flows_finds_the_passages_that_say_flow_and_flowing(alice):
    files = library(alice)
    assert analysis.terms("flows flowing flow") == ["flow"] * 3
    assert set(names(files, "What flows?")[:2]) == {"wings.txt", "nozzles.txt"}
    # "flows" twice there: it weighs more than "flow" once.
    assert names(files, "flows")[0] == "nozzles.txt"


def test_a_chinese_question_finds_the_chinese_document(alice):
    files = library(alice)
    assert names(files, "离心泵的压力是多少？") == ["泵.txt"]
    assert names(files, "What pressure does the 离心泵 take?") == ["泵.txt"]


def test_a_word_asked_twice_weighs_twice(alice):
    files = library(alice)
    assert names(files, "heat wing")[0] == "heat.txt"
    assert names(files, "heat wing, wings")[0] == "slip.txt"


def test_a_deleted_file_leaves_the_index_and_the_statistics(alice):
    files = library(alice)
    ids = [f.pk for f in files.values()]
    before = ranking.library(ids)
    assert before.frequencies(["wing"]) == {"wing": 2}
    services.file_delete(file=files["slip.txt"])
    assert not Posting.objects.filter(file_id=files["slip.txt"].pk).exists()
    after = ranking.library(ids)
    assert before.passages - after.passages == 1
    assert after.frequencies(["wing"]) == {"wing": 1}
    assert names(files, "slipstream") == []


def test_a_file_read_again_or_gone_with_its_account_leaves_no_posting_behind(alice, bob):
    files = library(alice)
    theirs = services.file_create(owner=bob, upload=SimpleUploadedFile("b.txt", b"Bob's wing."))
    services.file_read(file_id=theirs.file.pk)
    slip = files["slip.txt"]
    postings = Posting.objects.filter(file=slip)
    before = sorted(postings.values_list("term", "count", "length"))
    retrieval.passages_build(file=slip, text=slip.text)
    assert sorted(postings.values_list("term", "count", "length")) == before
    passages = Passage.objects.values("pk")
    assert not Posting.objects.exclude(passage_id__in=passages).exists()
    account_delete(user=alice)
    assert set(Posting.objects.values_list("file_id", flat=True)) == {theirs.file.pk}
    assert not Posting.objects.exclude(passage_id__in=passages).exists()


def test_scores_are_bm25_of_the_analysed_terms_on_every_database(alice):
    files = library(alice)
    query = "How does the slipstream change the flow over a wing?"
    found = ranking.library([f.pk for f in files.values()])
    weights = ranking.weigh(found, Counter(analysis.query_terms(query)))
    scores = ranking.bm25(file_ids=found.file_ids, weights=weights, limit=10)
    by_passage = {p.pk: p.file.name for p in Passage.objects.filter(pk__in=scores)}
    assert [(by_passage[pk], round(s, 9)) for pk, s in scores.items()] == reference(query)


def test_a_question_also_finds_passages_that_say_it_in_other_words(alice):
    files = library(alice)
    more = {
        "propellers.txt": "Propeller wake and propeller slipstream: the wake of a propeller.",
        "wakes.txt": "The propeller wake behind a propeller disc; wake contraction.",
    }
    for name, text in more.items():
        saved = services.file_create(owner=alice, upload=SimpleUploadedFile(name, text.encode()))
        services.file_read(file_id=saved.file.pk)
        files[name] = UploadedFile.objects.get(pk=saved.file.pk)
    found = names(files, "slipstream")
    # "wakes.txt" never says "slipstream": the passages that do say "propeller" and "wake".
    assert found[:2] == ["slip.txt", "propellers.txt"] or found[:2] == [
        "propellers.txt",
        "slip.txt",
    ]
    assert "wakes.txt" in found


def reference(query: str) -> list[tuple[str, float]]:
    """BM25 as written in the textbook, over the same terms."""
    documents = {name: Counter(analysis.terms(text)) for name, text in LIBRARY.items()}
    mean = sum(d.total() for d in documents.values()) / len(documents)
    asked = Counter(analysis.query_terms(query))
    scores = {}
    for name, counts in documents.items():
        score = 0.0
        for term, times in asked.items():
            n = sum(term in d for d in documents.values())
            if counts[term]:
                idf = math.log(1 + (len(documents) - n + 0.5) / (n + 0.5))
                tf = counts[term]
                norm = tf + ranking.K1 * (1 - ranking.B + ranking.B * counts.total() / mean)
                score += times * idf * tf * (ranking.K1 + 1) / norm
        if score:
            scores[name] = round(score, 9)
    return sorted(scores.items(), key=lambda item: -item[1])


def test_kimi_searching_the_library_gets_numbered_passages_with_their_sources(alice, bob):
    files = library(alice)
    theirs = services.file_create(
        owner=bob, upload=SimpleUploadedFile("secret.txt", b"Slipstream secrets of Bob.")
    ).file
    services.file_read(file_id=theirs.pk)
    text, sources = library_search.library_search(
        file_ids=[f.pk for f in files.values()], arguments='{"query": "slipstream over a wing"}'
    )
    assert text.startswith("[1] “slip.txt”:\nSlipstream effects on a wing")
    assert "Bob" not in text
    slip = files["slip.txt"].pk
    assert sources[0] == {"file": slip, "name": "slip.txt", "locator": "", "page": None}
    assert library_search.TOOL["function"]["name"] == "search_library"


def test_a_search_call_kimi_garbled_is_answered_not_raised(alice):
    files = [f.pk for f in library(alice).values()]
    for arguments in ("not json", "[]", '{"query": "  "}'):
        text, sources = library_search.library_search(file_ids=files, arguments=arguments)
        assert (text.startswith("No query was given"), sources) == (True, [])
    text, _ = library_search.library_search(file_ids=files, arguments='{"query": "zebra"}')
    assert text == "No passage matches “zebra”. Try other words."
