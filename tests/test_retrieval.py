"""Questions over documents larger than the model's window: passages with their pages, the
search index (BM25 over postings, on every database), and what reaches Kimi."""

import re

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from conversations import context
from conversations.models import Conversation, Message
from kimi import catalogue
from teams import services as teams
from teams.models import Membership
from tests.helpers import documents
from tests.helpers.chat import frames_until_final, open_chat
from tests.helpers.uploads import uploaded
from uploads import analysis, references, retrieval, services
from uploads.models import Passage, UploadedFile


@pytest.fixture(autouse=True)
def _small_window(settings):
    """The tests' model has a small window (8k, as moonshot-v1-8k had): what does not fit
    shows with little text."""
    settings.KIMI_CONTEXT_WINDOWS = {"kimi-k2.6": 8192}


FACT = "The Zephyr relief valve opens at exactly 42 bar."
CHINESE = [
    "第一章 安装。水泵应安装在干燥、通风的地方，周围留出维修空间。",
    "第二章 运行。启动前检查润滑油位，确认电机转向正确。",
    "第三章 压力。离心泵的最大工作压力为七巴，超过时安全阀会自动打开。",
    "第四章 保养。每运行五百小时更换一次密封件和过滤器。",
]


def filler(page: int) -> str:
    return (
        f"Maintenance manual, section {page}. Inspect the seals, the filters and the "
        f"bearings of unit {page}; record the readings in the logbook and report any "
        "leak to the shift supervisor before the next run. " * 4
    )


def text_file(owner, name: str, text: str) -> UploadedFile:
    saved = services.file_create(owner=owner, upload=SimpleUploadedFile(name, text.encode()))
    services.file_read(file_id=saved.file.pk)
    return UploadedFile.objects.get(pk=saved.file.pk)


def test_terms_are_stemmed_words_and_cjk_pairs():
    assert analysis.terms("Pump P-7 holds 42 bar") == ["pump", "p", "7", "hold", "42", "bar"]
    assert analysis.terms("离心泵 max") == ["离心", "心泵", "max"]
    assert analysis.terms("泵") == ["泵"]


def test_passages_keep_their_page_sheet_or_slide():
    text = "[Page 1]\nIntro\n\n[Page 2]\n" + "A long paragraph. " * 200 + "\n[Sheet: Q3]\n| a |"
    chunks = retrieval.split(text)
    assert (chunks[0].locator, chunks[0].page) == ("Page 1", 1)
    assert {c.locator for c in chunks} == {"Page 1", "Page 2", "Sheet: Q3"}
    assert all(len(c.text) <= retrieval.PASSAGE_CHARS for c in chunks)
    assert sum(c.locator == "Page 2" for c in chunks) >= 3


def test_a_chinese_question_finds_the_chinese_passage(alice):
    manual = text_file(alice, "水泵手册.txt", "\n\n".join(p * 30 for p in CHINESE))
    assert manual.passages.count() >= 4
    hits = retrieval.search(file_ids=[manual.pk], query="离心泵的最大压力是多少？")
    assert "最大工作压力为七巴" in hits[0].passage.text
    assert hits[0].score > hits[-1].score or len(hits) == 1


def test_search_is_limited_to_the_files_given_and_forgets_deleted_ones(alice, bob):
    mine = text_file(alice, "a.txt", FACT)
    theirs = text_file(bob, "b.txt", FACT)
    assert [h.passage.file_id for h in retrieval.search(file_ids=[mine.pk], query="Zephyr")] == [
        mine.pk
    ]
    services.file_delete(file=mine)
    assert (
        retrieval.search(file_ids=[mine.pk, theirs.pk], query="Zephyr valve")[0].passage.file_id
        == theirs.pk
    )
    assert not Passage.objects.filter(file_id=mine.pk).exists()
    assert retrieval.search(file_ids=[mine.pk], query="Zephyr") == []


def test_a_source_opens_in_the_browser_only_when_it_is_safe(alice):
    pdf = services.file_create(
        owner=alice, upload=SimpleUploadedFile("m.pdf", documents.pdf_bytes(["One"]))
    ).file
    html = text_file(alice, "page.html", "<p>hello</p>")
    client = Client()
    client.force_login(alice)
    assert client.get(f"/files/{pdf.pk}/view/")["Content-Disposition"].startswith("inline")
    assert client.get(f"/files/{html.pk}/view/")["Content-Disposition"].startswith("attachment")
    client.force_login(User.objects.create_user("eve"))
    assert client.get(f"/files/{pdf.pk}/view/").status_code == 404


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_kimi_clients")
async def test_a_fact_on_one_page_of_a_300_page_pdf_is_found_and_the_request_fits(kimi, alice):
    pages = [FACT if n == 217 else filler(n) for n in range(1, 301)]
    manual = await uploaded(alice, "manual.pdf", documents.pdf_bytes(pages))
    assert (manual.status, manual.pages) == ("ready", 300)
    assert manual.tokens > 8192 * 5  # far beyond the model's window
    conversation = await Conversation.objects.acreate(owner=alice, model="kimi-k2.6")
    chat = await open_chat(alice, conversation)
    question = "@manual.pdf At what pressure does the Zephyr relief valve open?"
    await chat.send_json_to({"message": question, "client_id": "r1", "model": "kimi-k2.6"})
    frames = await frames_until_final(chat)

    sent = kimi.requests[-1].body
    passages = [m["content"] for m in sent["messages"] if m["role"] == "system"]
    assert len(passages) == 1
    assert (
        "“manual.pdf”, Page 217:\nThe Zephyr relief valve opens at exactly 42 bar." in passages[0]
    )
    size = sum(catalogue.estimate_tokens(str(m["content"])) for m in sent["messages"])
    assert size + catalogue.answer_reserve("kimi-k2.6", None) <= 8192
    answer = await Message.objects.aget(role="assistant")
    assert {"file": manual.pk, "name": "manual.pdf", "locator": "Page 217", "page": 217} in (
        answer.sources
    )
    assert f'href="/files/{manual.pk}/view/#page=217"' in frames[-1]
    # The file named once, its pages after it, each page's link named in full.
    sources = re.search(r'<div class="sources".*?</div>', frames[-1], re.S)[0]
    assert sources.count(">manual.pdf</a>") == 1 and len(answer.sources) > 1
    assert re.search(r'aria-label="manual.pdf, page 217">217</a>', sources)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_kimi_clients")
async def test_a_document_that_fits_is_sent_whole_without_sources(kimi, alice):
    short = await uploaded(alice, "short.txt", FACT.encode())
    conversation = await Conversation.objects.acreate(owner=alice, model="kimi-k2.6")
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "@short.txt Pressure?", "client_id": "r2"})
    frames = await frames_until_final(chat)
    system = [m["content"] for m in kimi.requests[-1].body["messages"] if m["role"] == "system"]
    assert system == [f"Document “short.txt” (attached by the user):\n\n{FACT}"]
    assert (await Message.objects.aget(role="assistant")).sources == []
    assert 'aria-label="Sources"' not in frames[-1]
    assert short.pk


def test_a_question_that_matches_nothing_gets_the_start_of_the_documents(alice):
    big = text_file(alice, "big.txt", "\n\n".join(filler(n) for n in range(400)))
    selection = retrieval.select(files=[big], query="Summarise it", tokens=2000)
    assert selection is not None
    assert re.match(r"The documents referred to are too long", selection.text)
    assert "section 0." in selection.text
    assert selection.sources == [{"file": big.pk, "name": "big.txt", "locator": "", "page": None}]


def test_a_whole_team_library_is_questioned_through_its_passages(alice, bob):
    team = teams.team_create(user=alice, name="Ops")
    Membership.objects.create(team=team, user=bob)
    for name, fact_at in (("pumps.txt", 150), ("valves.txt", None)):
        text = "\n\n".join(FACT if n == fact_at else filler(n) for n in range(300))
        saved = services.file_create(
            owner=alice, upload=SimpleUploadedFile(name, text.encode()), team=team
        )
        services.file_read(file_id=saved.file.pk)
    question = "@ops At what pressure does the Zephyr relief valve open?"
    files = references.resolve(user=bob, text=question)
    assert {f.name for f in files} == {"pumps.txt", "valves.txt"}
    conversation = Conversation(owner=bob, model="kimi-k2.6")
    request = context.build(
        conversation=conversation, thread=None, until=None, question=question, files=files
    )
    assert FACT in request.messages[0]["content"]
    assert request.sources[0]["name"] == "pumps.txt"
