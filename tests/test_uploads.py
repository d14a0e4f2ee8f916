"""Uploading, reading and referring to files, through the real views and the chat socket, with
the Kimi stub over HTTP."""

import html
import json
import re

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import AsyncClient

from conversations.models import Conversation, Message
from tests.helpers import documents
from tests.helpers.chat import connect, frames_until_final, open_chat
from tests.helpers.uploads import REPORT, chips, logged_in, refusals, suggested, upload, uploaded
from uploads import background, services
from uploads.models import UploadedFile

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_kimi_clients"),
]


@pytest.fixture
def conversation(alice):
    return Conversation.objects.create(owner=alice, model="kimi-k3", title="Docs")


def system_texts(request) -> list[str]:
    return [m["content"] for m in request.body["messages"] if m["role"] == "system"]


async def test_an_upload_is_read_in_the_background_and_its_status_shown_live(alice, conversation):
    chat = await open_chat(alice, conversation)
    response = await upload(await logged_in(alice), "report.docx", documents.docx_bytes())
    assert response.status_code == 200
    [(pk, name)] = chips(response)
    assert name == "report.docx"
    # The chip goes with the next message, and says it is being read.
    assert f'<input type="hidden" name="files" value="{pk}">' in response.content.decode()
    assert "Reading…" in response.content.decode()

    # The page hears when the text is read.
    status = await chat.receive_from(30)
    assert f'hx-swap-oob="outerHTML:.file-status-{pk}"' in status
    assert "Ready" in status
    file = await UploadedFile.objects.aget(pk=pk)
    assert file.status == "ready" and REPORT in file.text and file.tokens > 0
    await chat.disconnect(timeout=10)


async def test_the_same_bytes_uploaded_again_give_the_same_file(alice):
    first = await uploaded(alice, "notes.txt", b"the same notes")
    again = await upload(await logged_in(alice), "copy.txt", b"the same notes")
    assert [pk for pk, _name in chips(again)] == [first.pk]
    assert await UploadedFile.objects.acount() == 1


async def test_several_files_at_once_each_get_their_answer(alice):
    response = await upload(
        await logged_in(alice), "a.txt", b"first file", ("tool.exe", b"MZ"), ("b.md", b"# B")
    )
    assert response.status_code == 400
    assert [name for _pk, name in chips(response)] == ["a.txt", "b.md"]
    [error] = refusals(response)
    assert error.startswith("“tool.exe” was not uploaded")
    # Said above the composer too, after what is already said there.
    said = re.search(
        r'<span hx-swap-oob="beforeend:#composer-error">([^<]*)</span>', response.content.decode()
    )
    assert html.unescape(said[1]).strip() == error
    await background.idle()


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("tool.exe", b"MZ\x90\x00", "this type of file is not supported"),
        ("invoice.pdf", b"\x7fELF\x02\x01\x01" + b"\0" * 64, "not really a PDF file"),
        ("empty.md", b"", "it is empty"),
        ("old.ppt", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "old Office formats"),
        ("bomb.docx", documents.zip_bomb_docx(3 * 1024 * 1024), "unpacks to more than"),
    ],
)
async def test_a_refused_upload_names_the_file_and_the_reason_and_keeps_nothing(
    alice, settings, name, data, reason
):
    settings.UPLOAD_MAX_UNPACKED_BYTES = 1024 * 1024
    response = await upload(await logged_in(alice), name, data)
    assert response.status_code == 400
    [error] = refusals(response)
    assert error.startswith(f"“{name}” was not uploaded:") and reason in error
    assert await UploadedFile.objects.acount() == 0


async def test_an_encrypted_pdf_and_an_oversized_file_are_refused(alice, settings):
    client = await logged_in(alice)
    secret = (documents_dir() / "libreoffice-writer-password.pdf").read_bytes()
    response = await upload(client, "secret.pdf", secret)
    assert "protected by a password" in refusals(response)[0]
    settings.UPLOAD_MAX_BYTES = 1000
    response = await upload(client, "big.txt", b"x" * 1001)
    assert "larger than 1000" in refusals(response)[0]


def documents_dir():
    from tests.test_extract import TESTDATA

    return TESTDATA


async def test_a_document_reaches_kimi_as_its_own_system_message(kimi, alice, conversation):
    await uploaded(alice, "report.docx", documents.docx_bytes())
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Summarise @report.docx please", "client_id": "c1"})
    frames = await frames_until_final(chat)
    assert "report.docx" in frames[0]  # the question shows the file it refers to

    [request] = kimi.streams
    messages = request.body["messages"]
    assert messages[0]["role"] == "system" and "report.docx" in messages[0]["content"]
    assert REPORT in messages[0]["content"]
    assert messages[-1] == {"role": "user", "content": "Summarise @report.docx please"}

    # A file referred to once stays in the conversation's context.
    await chat.send_json_to({"message": "And the conclusion?", "client_id": "c2"})
    await frames_until_final(chat)
    assert any(REPORT in text for text in system_texts(kimi.streams[1]))
    await chat.disconnect(timeout=10)


async def test_files_are_referred_to_by_id_by_attaching_and_several_at_once(
    kimi, alice, conversation
):
    sales = await uploaded(alice, "sales.xlsx", documents.xlsx_bytes())
    deck = await uploaded(alice, "deck.pptx", documents.pptx_bytes())
    notes = await uploaded(alice, "my notes.txt", b"Meeting at noon.")
    chat = await open_chat(alice, conversation)
    await chat.send_json_to(
        {
            "message": f"Compare @file_{sales.pk} with @my notes.txt.",
            "files": [f"file_{deck.pk}"],
            "client_id": "c1",
        }
    )
    await frames_until_final(chat)
    texts = system_texts(kimi.streams[0])
    assert [t.split("”")[0] for t in texts] == [
        "Document “sales.xlsx",
        "Document “my notes.txt",
        "Document “deck.pptx",
    ]
    question = await Message.objects.aget(role="user")
    assert {f.pk async for f in question.files.all()} == {sales.pk, deck.pk, notes.pk}
    await chat.disconnect(timeout=10)


async def test_another_users_file_is_refused_by_name_and_by_id_like_a_missing_one(kimi, alice, bob):
    file = await uploaded(alice, "private.txt", b"Alice's secret")
    chat = await open_chat(bob)
    errors = []
    for text in ["What is in @private.txt", f"Read @file-{file.pk}", "Read @nothing.pdf"]:
        await chat.send_json_to({"message": text, "client_id": text})
        errors.append(await chat.receive_from(30))
    assert "There is no file “private.txt” that you can read" in errors[0]
    assert f"There is no file “file-{file.pk}” that you can read" in errors[1]
    assert "There is no file “nothing.pdf” that you can read" in errors[2]
    assert all('id="composer-error"' in e for e in errors)
    # Nothing went upstream, nothing was saved, and Bob cannot download it either.
    assert kimi.requests == [] and await Message.objects.acount() == 0
    response = await (await logged_in(bob)).get(f"/files/{file.pk}/download/")
    assert response.status_code == 404
    await chat.disconnect(timeout=10)


async def test_an_at_sign_that_names_no_file_is_just_text(kimi, alice, conversation):
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Say hi to @kimi, mail me@example.com", "client_id": "c"})
    await frames_until_final(chat)
    assert kimi.streams[0].body["messages"][-1]["content"].startswith("Say hi to @kimi")
    await chat.disconnect(timeout=10)


async def test_an_image_goes_as_an_image_part_to_a_model_that_sees(older_kimi, alice, conversation):
    kimi = older_kimi  # with a model that never saw, offered where an operator names it
    image = await uploaded(alice, "chart.png", documents.png_bytes())
    chat = await open_chat(alice, conversation)
    await chat.send_json_to(
        {"message": "What is @chart.png", "model": "moonshot-v1-8k", "client_id": "c1"}
    )
    error = await chat.receive_from(30)
    assert "“chart.png” is an image, and moonshot-v1-8k cannot see images" in error
    assert "kimi-k2.6" in error and kimi.requests == []

    await chat.send_json_to(
        {"message": "What is @chart.png", "model": "kimi-k2.6", "client_id": "c2"}
    )
    await frames_until_final(chat)
    content = kimi.streams[0].body["messages"][-1]["content"]
    assert content[0]["type"] == "image_url"
    assert content[0]["image_url"]["url"].startswith("data:image/png;base64,iVBOR")
    assert content[1] == {"type": "text", "text": "What is @chart.png"}
    assert image.status == "ready"
    await chat.disconnect(timeout=10)


async def test_a_message_waits_visibly_for_its_file_to_be_read(kimi, alice, conversation):
    file = await sync_to_async(UploadedFile.objects.create)(
        owner=alice,
        name="later.txt",
        size=12,
        sha256="0" * 64,
        kind="text",
        content_type="text/plain",
        file=SimpleUploadedFile("later.txt", b"Read me later"),
    )
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Read @later.txt", "client_id": "c1"})
    await chat.receive_from(30)  # the question and the waiting answer
    status = await chat.receive_from(30)
    assert "Waiting for “later.txt” to be read…" in status
    assert kimi.requests == []

    await sync_to_async(services.file_read)(file_id=file.pk)
    frames = await frames_until_final(chat)
    assert 'data-state="done"' in frames[-1]
    assert any("Read me later" in t for t in system_texts(kimi.streams[0]))
    await chat.disconnect(timeout=10)


async def test_a_file_that_could_not_be_read_is_refused_with_its_reason(alice, conversation):
    scan = (documents_dir() / "imagemagick-images.pdf").read_bytes()
    await uploaded(alice, "scan.pdf", scan)
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Summarise @scan.pdf", "client_id": "c1"})
    error = await chat.receive_from(30)
    assert "“scan.pdf” could not be read: it has no text layer" in error
    await chat.disconnect(timeout=10)


async def test_a_pdf_without_text_can_be_read_by_kimis_file_extract(kimi, alice):
    scan = await uploaded(
        alice, "scan.pdf", (documents_dir() / "imagemagick-images.pdf").read_bytes()
    )
    assert scan.status == "failed" and scan.error_code == "no_text"
    client = await logged_in(alice)
    page = await client.get("/files/")
    assert "Read it with Kimi (OCR)" in page.content.decode()

    response = await client.post(
        f"/files/{scan.pk}/read-with-kimi/", headers={"hx-request": "true"}
    )
    assert response.status_code == 204
    await background.idle()
    await scan.arefresh_from_db()
    assert scan.status == "ready" and scan.text == "Text that Kimi read from the file."
    [sent] = kimi.files.values()
    assert sent["filename"] == "scan.pdf" and sent["purpose"] == "file-extract"
    assert sent["deleted"]  # nothing is left at Kimi


async def test_suggestions_list_only_the_users_own_files(alice, bob):
    await uploaded(alice, "alpha report.txt", b"a")
    await uploaded(bob, "alpha secret.txt", b"b")
    response = await (await logged_in(alice)).get("/files/suggest/", {"q": "alpha"})
    assert suggested(response) == [("@alpha report.txt", "alpha report.txt", "Text · 1\xa0byte")]


async def test_the_files_page_lists_downloads_and_deletes(alice, bob):
    file = await uploaded(alice, "notes <b>.txt", b"some notes")
    client = await logged_in(alice)
    page = (await client.get("/files/")).content.decode()
    assert 'aria-label="Files"' in page and "notes &lt;b&gt;.txt" in page and "Ready" in page

    download = await client.get(f"/files/{file.pk}/download/")
    assert b"".join(download.streaming_content) == b"some notes"
    assert "attachment" in download["Content-Disposition"]

    other = await logged_in(bob)
    assert (await other.post(f"/files/{file.pk}/delete/")).status_code == 404
    assert (await client.post(f"/files/{file.pk}/delete/")).status_code == 302
    assert await UploadedFile.objects.acount() == 0
    assert not await sync_to_async(file.file.storage.exists)(file.file.name)


async def test_the_files_page_form_uploads_and_reports_refusals(alice):
    client = await logged_in(alice)
    response = await client.post(
        "/files/upload/",
        {"file": [SimpleUploadedFile("ok.txt", b"fine"), SimpleUploadedFile("x.exe", b"MZ")]},
        follow=True,
    )
    await background.idle()
    page = response.content.decode()
    assert "Uploaded: ok.txt" in page
    assert "“x.exe” was not uploaded: this type of file is not supported" in page


async def test_the_files_socket_shows_status_changes(alice):
    files_socket = await connect(alice, "/ws/files/")
    assert (await files_socket.connect(30))[0]
    response = await upload(await logged_in(alice), "deck.pptx", documents.pptx_bytes())
    frame = await files_socket.receive_from(30)
    [(pk, _name)] = chips(response)
    assert f"file-status-{pk}" in frame and "2 slides" in frame
    await files_socket.disconnect(timeout=10)
    anonymous = await connect(None, "/ws/files/")
    assert not (await anonymous.connect(30))[0]


async def test_a_files_page_that_connects_late_still_hears_of_a_file_just_read(alice):
    file = await uploaded(alice, "quick.txt", b"read before the page listened")
    files_socket = await connect(alice, "/ws/files/")
    assert (await files_socket.connect(30))[0]
    frame = await files_socket.receive_from(30)
    assert f"file-status-{file.pk}" in frame and "Ready" in frame
    await files_socket.disconnect(timeout=10)


def test_uploaded_names_lose_paths_and_control_characters():
    assert services.clean_name("../../etc/passwd") == "passwd"
    assert services.clean_name("C:\\Users\\me\\a\x00b.txt") == "ab.txt"
    assert json.dumps(services.clean_name("")) == '"file"'
    assert re.fullmatch(r"x+\.pdf", services.clean_name("x" * 300 + ".pdf"))


def test_with_the_database_backend_a_worker_reads_the_file(alice, settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.backend.DatabaseBackend"}}
    from django.core.management import call_command
    from django_tasks_db.models import DBTaskResult

    async def upload_and_queue():
        response = await upload(await logged_in(alice), "queued.txt", b"Read by a worker.")
        await background.idle()
        [(pk, _name)] = chips(response)
        return pk

    file = UploadedFile.objects.get(pk=async_to_sync(upload_and_queue)())
    assert file.status == "processing" and DBTaskResult.objects.count() == 1

    # `manage.py db_worker` (it takes the main thread, for its signals), until the queue is empty.
    call_command("db_worker", "--batch", "--no-startup-delay", verbosity=0)
    file.refresh_from_db()
    assert file.status == "ready" and file.text == "Read by a worker."


def test_a_worker_takes_each_users_first_waiting_file_before_anyones_second(alice, bob, settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.backend.DatabaseBackend"}}
    from django_tasks_db.models import DBTaskResult

    async def upload_and_queue(user, *names: str) -> None:
        files = [(name, name.encode()) for name in names]
        await upload(await logged_in(user), *files[0], *files[1:])
        await background.idle()

    async_to_sync(upload_and_queue)(alice, "a1.txt", "a2.txt", "a3.txt")
    async_to_sync(upload_and_queue)(bob, "b1.txt")
    # The order a worker takes them in (the queue's own ordering).
    queued = [
        UploadedFile.objects.get(pk=r.args_kwargs["args"][0]).name
        for r in DBTaskResult.objects.ready()
    ]
    assert queued == ["a1.txt", "b1.txt", "a2.txt", "a3.txt"]


async def test_files_need_a_login(alice):
    anonymous = AsyncClient()
    for response in [
        await anonymous.post("/files/upload/", {"file": SimpleUploadedFile("a.txt", b"a")}),
        await anonymous.get("/files/"),
        await anonymous.get("/files/suggest/"),
    ]:
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert await UploadedFile.objects.acount() == 0


async def test_refusals_come_in_the_pages_language(alice):
    client = await logged_in(alice)
    response = await client.post(
        "/files/upload/",
        {"file": SimpleUploadedFile("tool.exe", b"MZ")},
        headers={"hx-request": "true", "accept-language": "zh-hans"},
    )
    assert refusals(response) == [
        "“tool.exe”未上传：不支持此类文件。请上传 PDF、Word (.docx)、Excel (.xlsx)、"
        "PowerPoint (.pptx)、文本、Markdown、CSV、JSON、HTML、源代码或图片"
        "（PNG、JPEG、WebP、GIF）。"
    ]


async def test_a_page_that_missed_a_files_news_asks_and_is_told(alice, conversation):
    """Read while the page's socket was not connected: the page asks on (re)connect."""
    file = await uploaded(alice, "early.txt", b"Read before anyone listened.")
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"action": "statuses", "files": [file.pk, "x", 10**9]})
    frame = await chat.receive_from(30)
    assert f'hx-swap-oob="outerHTML:.file-status-{file.pk}"' in frame
    assert "Ready" in frame
    assert await chat.receive_nothing(0.2)


async def test_a_person_cannot_upload_past_their_storage_or_their_number_of_files(alice, settings):
    client = await logged_in(alice)
    settings.USER_STORAGE_MB = 1
    response = await upload(client, "a.txt", b"a" * 700_000)
    assert response.status_code == 200
    response = await upload(client, "b.txt", b"b" * 400_000)
    [error] = refusals(response)
    assert error.startswith("“b.txt” was not uploaded:") and "more than 1.0\xa0MB" in error
    assert "Delete files you no longer need" in error

    settings.USER_STORAGE_MB, settings.USER_MAX_FILES = 100, 2
    assert (await upload(client, "c.txt", b"c")).status_code == 200
    [error] = refusals(await upload(client, "d.txt", b"d"))
    assert "you have 2 files, the most allowed" in error
    # The same bytes again are the file already there, not one more.
    assert (await upload(client, "c.txt", b"c")).status_code == 200
    assert await UploadedFile.objects.acount() == 2
    await background.idle()
