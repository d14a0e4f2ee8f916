"""What an attacker (or a careless script) sends gets a plain answer, a bounded cost, and
leaves the server answering everyone else: odd frames, floods of actions, too many sockets,
hostile files and names, a flood of `@`. (Bodies and sockets that do not read are refused by
the server process itself: tests/e2e/test_hostile_server.py.)"""

import html
import io
import re
import struct
import time
import zipfile
import zlib

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import AsyncClient, Client
from PIL import Image

from bench.hostile import xlsx_rows
from conversations.models import Conversation, Message
from kimichat.asgi import application
from realtime import limits, live
from tests.helpers.chat import ORIGIN, add_thread, connect, frames_until_final, open_chat
from tests.helpers.uploads import logged_in, refusals, upload, uploaded
from uploads import background
from uploads.extract import SPREADSHEET_MAX_ROWS
from uploads.models import UploadedFile

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_kimi_clients"),
]


@pytest.fixture
def conversation(alice):
    return Conversation.objects.create(owner=alice, model="kimi-k2.6", title="Test")


async def answered(communicator, text: str) -> str:
    await communicator.send_json_to({"message": text})
    frames = await frames_until_final(communicator)
    return "".join(frames)


# Frames no page sends


async def test_an_unknown_socket_path_is_refused_with_a_close_code(alice):
    communicator = await connect(alice, "/ws/nothing/here/")
    connected, code = await communicator.connect(30)
    assert not connected and code == live.CLOSE_NOT_FOUND


@pytest.mark.parametrize(
    "frame",
    [
        "{not json",
        '{"action": "regenerate", "message_id": 1e309}',
        '{"message": "hi", "files": [1e309, -1, 99999999999999999999999]}',
        '{"action": "sync", "streaming": {"1e309": "1e309", "x": 1}}',
        '{"action": ["select"]}',
        "[1, 2, 3]",
    ],
)
async def test_odd_frames_neither_crash_the_socket_nor_stop_it_answering(
    kimi, alice, conversation, frame
):
    communicator = await open_chat(alice, conversation)
    await communicator.send_to(text_data=frame)
    # The socket is still there, and answers the next message.
    page = await answered(communicator, "Still there?")
    assert "Hello from the Kimi stub." in page
    await communicator.disconnect()


async def test_a_flood_of_actions_is_refused_with_a_plain_message(kimi, alice, conversation):
    _question, reply = await sync_to_async(add_thread)(
        conversation,
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": "A" * 60_000, "model": "kimi-k2.6"},
    )
    communicator = await open_chat(alice, conversation)
    started = time.monotonic()
    for _ in range(200):
        await communicator.send_json_to({"action": "select", "message_id": reply.pk})
    frames = []
    while "too many actions" not in "".join(frames):
        frames.append(await communicator.receive_from(30))
    # The burst was taken; the rest of the flood was not (each would re-render the thread).
    # The bucket refills as time passes, so what a slow machine took is bounded by the time it
    # took, not by a fixed count.
    rate, burst = limits.RATES["select"]
    threads = [f for f in frames if 'id="messages"' in f]
    assert 0 < len(threads) <= burst + rate * (time.monotonic() - started) + 1
    assert len(threads) < 200
    await communicator.disconnect()


async def test_a_user_has_at_most_user_max_sockets(alice, bob, settings):
    settings.USER_MAX_SOCKETS = 3
    open_ones = [await open_chat(alice) for _ in range(3)]
    extra = await connect(alice, "/ws/files/")
    connected, code = await extra.connect(30)
    assert not connected and code == live.CLOSE_TOO_MANY
    # Another user is not affected, and a closed tab frees its place.
    theirs = await open_chat(bob)
    await open_ones.pop().disconnect()
    again = await open_chat(alice)
    for communicator in [*open_ones, theirs, again]:
        await communicator.disconnect()


async def test_one_browser_session_is_refused_more_sockets_before_any_lookup(alice, settings):
    settings.USER_MAX_SOCKETS = 2
    client = Client()
    await sync_to_async(client.force_login)(alice)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    headers = [ORIGIN, (b"host", b"localhost"), (b"cookie", cookie)]
    sockets = [WebsocketCommunicator(application, "/ws/files/", headers=headers) for _ in range(3)]
    assert [(await s.connect(30))[0] for s in sockets] == [True, True, False]
    await sockets[0].disconnect()
    again = WebsocketCommunicator(application, "/ws/files/", headers=headers)
    assert (await again.connect(30))[0]
    for communicator in (sockets[1], again):
        await communicator.disconnect()


# `@` references


async def test_a_flood_of_at_signs_is_just_text_and_answered(kimi, alice, conversation):
    await sync_to_async(_many_files)(alice, 520)
    await Conversation.objects.filter(pk=conversation.pk).aupdate(model="kimi-k3")
    communicator = await open_chat(alice, conversation)
    page = await answered(communicator, "@x " * 33333)
    assert "Hello from the Kimi stub." in page
    await communicator.disconnect()


async def test_a_message_names_at_most_twenty_files(kimi, alice, conversation):
    files = await sync_to_async(_many_files)(alice, 21)
    communicator = await open_chat(alice, conversation)
    text = " ".join(f"@{f.name}" for f in files)
    await communicator.send_json_to({"message": text})
    frame = await communicator.receive_from(30)
    assert "A message can name at most 20 files or teams with @" in frame
    assert not await Message.objects.filter(conversation=conversation).aexists()
    # Twenty is fine.
    text = " ".join(f"@{f.name}" for f in files[:20])
    page = await answered(communicator, text)
    assert "Hello from the Kimi stub." in page
    await communicator.disconnect()


def _many_files(user, count: int) -> list[UploadedFile]:
    return UploadedFile.objects.bulk_create(
        UploadedFile(
            owner=user,
            name=f"x {n}.txt",
            size=5,
            sha256=f"{n:064x}",
            kind=UploadedFile.Kind.TEXT,
            content_type="text/plain",
            status=UploadedFile.Status.READY,
            text=f"file {n}",
        )
        for n in range(count)
    )


async def test_editing_a_copied_question_does_not_send_the_writers_private_file(
    kimi, alice, bob, team_copy
):
    communicator = await open_chat(bob, team_copy)
    question = await team_copy.messages.filter(role="user").afirst()
    await communicator.send_json_to(
        {"action": "edit", "message_id": question.pk, "message": "What about 8 bar?"}
    )
    frames = await frames_until_final(communicator)
    assert "Hello from the Kimi stub." in "".join(frames)
    # The original's file is alice's own: bob may not read it, so Kimi is not sent it.
    sent = str(kimi.requests[-1].body["messages"])
    assert "What about 8 bar?" in sent and "Pump curves" not in sent
    # Nor on Regenerate, nor on Continue (every way a saved question is sent again).
    answer = await team_copy.messages.filter(role="assistant").alast()
    await communicator.send_json_to({"action": "regenerate", "message_id": answer.pk})
    await frames_until_final(communicator)
    assert "Pump curves" not in str(kimi.requests[-1].body["messages"])
    await communicator.disconnect()


async def test_a_member_who_left_the_team_no_longer_sends_its_file_on_edit(kimi, alice, bob):
    from teams.models import Membership

    team_file, conversation = await sync_to_async(_bobs_question_on_a_team_file)(alice, bob)
    await Membership.objects.filter(user=bob).adelete()
    communicator = await open_chat(bob, conversation)
    question = await conversation.messages.filter(role="user").afirst()
    await communicator.send_json_to(
        {"action": "edit", "message_id": question.pk, "message": "And the valves?"}
    )
    await frames_until_final(communicator)
    sent = str(kimi.requests[-1].body["messages"])
    assert "And the valves?" in sent and team_file.text not in sent
    await communicator.disconnect()


def _bobs_question_on_a_team_file(alice, bob):
    from teams.models import Membership, Team

    team = Team.objects.create(name="Lab", slug="lab")
    Membership.objects.create(team=team, user=alice, role=Membership.Role.OWNER)
    Membership.objects.create(team=team, user=bob, role=Membership.Role.MEMBER)
    file = UploadedFile.objects.create(
        owner=alice,
        team=team,
        name="valves.txt",
        size=11,
        sha256="2" * 64,
        kind=UploadedFile.Kind.TEXT,
        content_type="text/plain",
        status=UploadedFile.Status.READY,
        text="Valve secrets",
    )
    conversation = Conversation.objects.create(owner=bob, model="moonshot-v1-8k")
    question, _ = add_thread(
        conversation,
        {"role": "user", "content": "Which valve? @valves.txt"},
        {"role": "assistant", "content": "The red one.", "model": "moonshot-v1-8k"},
    )
    question.files.add(file)
    return file, conversation


@pytest.fixture
def team_copy(alice, bob):
    from conversations import chats
    from teams.models import Membership, Team

    team = Team.objects.create(name="Lab", slug="lab")
    Membership.objects.create(team=team, user=alice, role=Membership.Role.OWNER)
    Membership.objects.create(team=team, user=bob, role=Membership.Role.MEMBER)
    file = UploadedFile.objects.create(
        owner=alice,
        name="pumps.txt",
        size=11,
        sha256="1" * 64,
        kind=UploadedFile.Kind.TEXT,
        content_type="text/plain",
        status=UploadedFile.Status.READY,
        text="Pump curves",
    )
    original = Conversation.objects.create(owner=alice, model="kimi-k2.6", team=team)
    question, _ = add_thread(
        original,
        {"role": "user", "content": "What pump? @pumps.txt"},
        {"role": "assistant", "content": "7 bar.", "model": "kimi-k2.6"},
    )
    question.files.add(file)
    return chats.conversation_copy(conversation=original, user=bob)


# Hostile files and names


def _multipart(filename: bytes, data: bytes) -> bytes:
    return (
        b'--BOUNDARY\r\nContent-Disposition: form-data; name="file"; filename="'
        + filename
        + b'"\r\nContent-Type: application/octet-stream\r\n\r\n'
        + data
        + b"\r\n--BOUNDARY--\r\n"
    )


def composer_error(response) -> str:
    found = re.search(r'beforeend:#composer-error">(.*?)</span>', response.content.decode(), re.S)
    return html.unescape(found.group(1).strip()) if found else ""


async def _post_raw(client: AsyncClient, body: bytes):
    return await client.generic(
        "POST",
        "/files/upload/",
        body,
        content_type="multipart/form-data; boundary=BOUNDARY",
        headers={"hx-request": "true"},
    )


async def test_a_file_name_over_a_kilobyte_gets_a_plain_refusal(alice):
    client = await logged_in(alice)
    response = await _post_raw(client, _multipart(b"a" * 2000 + b".txt", b"hello"))
    assert response.status_code == 400
    assert composer_error(response) == (
        "This upload could not be read. If a file's name is very long, shorten it."
    )


async def test_a_file_name_that_is_not_utf8_gets_a_plain_refusal(alice):
    client = await logged_in(alice)
    response = await _post_raw(client, _multipart("é.txt".encode("latin-1"), b"hello " * 400))
    assert response.status_code == 400
    assert "is its name in UTF-8?" in composer_error(response)


async def test_an_image_of_billions_of_pixels_is_refused_for_its_size(alice):
    response = await upload(await logged_in(alice), "huge.png", _png_claiming(50_000, 50_000))
    assert refusals(response) == [
        "“huge.png” was not uploaded: the image is larger than 178,956,970 pixels, "
        "the most allowed."
    ]


def _png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims `width` by `height` pixels."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", width, height)
    # The header's checksum must match, or it is just a damaged PNG.
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def _docx(document_xml: bytes, *, claim: int | None = None) -> bytes:
    """A DOCX whose document part is `document_xml`; with `claim`, its zip headers say that
    part unpacks to `claim` bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/'
            '2006/content-types"><Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/word/document.xml" ContentType="application/vnd.'
            'openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>',
        )
        archive.writestr(
            "_rels/.rels",
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/'
            'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
            'openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
            'Target="word/document.xml"/></Relationships>',
        )
        archive.writestr("word/document.xml", document_xml)
    data = bytearray(buffer.getvalue())
    if claim is not None:
        name = b"word/document.xml"
        local = data.rindex(b"PK\x03\x04", 0, data.index(name) + 1)
        data[local + 22 : local + 26] = struct.pack("<I", claim)
        central = data.rindex(b"PK\x01\x02", 0, data.rindex(name) + 1)
        data[central + 24 : central + 28] = struct.pack("<I", claim)
    return bytes(data)


def _document(paragraphs: int) -> bytes:
    body = b"<w:p><w:r><w:t>All work and no play makes Jack a dull boy.</w:t></w:r></w:p>"
    return (
        b'<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
        b'wordprocessingml/2006/main"><w:body>' + body * paragraphs + b"</w:body></w:document>"
    )


async def test_a_docx_that_lies_about_its_unpacked_size_is_refused_without_unpacking_it(alice):
    data = _docx(_document(500_000), claim=1024)  # ~38 MB of XML, said to be 1 KB
    file = await uploaded(alice, "bomb.docx", data)
    assert file.status == UploadedFile.Status.FAILED
    assert file.error_code == "corrupt"


async def test_a_docx_unpacking_past_the_limit_is_refused(alice, settings):
    settings.UPLOAD_MAX_UNPACKED_BYTES = 10 * 1024 * 1024
    response = await upload(await logged_in(alice), "big.docx", _docx(_document(200_000)))
    assert refusals(response) == [
        "“big.docx” was not uploaded: it unpacks to more than 10.0\xa0MB, the most allowed."
    ]


async def test_a_file_that_needs_too_much_memory_fails_alone(kimi, alice, conversation, settings):
    settings.FILE_READER_MEMORY_MB = 64
    file = await uploaded(alice, "heavy.docx", _docx(_document(400_000)))  # 30 MB of XML
    assert file.status == UploadedFile.Status.FAILED
    assert file.error == ("reading it needs more than 64 MB of memory, the most allowed.")
    # The server is fine, and reads the next file.
    small = await uploaded(alice, "small.docx", _docx(_document(3)))
    assert small.status == UploadedFile.Status.READY and "Jack" in small.text


async def test_a_file_that_takes_too_long_is_stopped(alice, settings):
    settings.EXTRACT_TIMEOUT = 0.2
    file = await uploaded(alice, "slow.docx", _docx(_document(400_000)))
    assert file.status == UploadedFile.Status.FAILED
    assert file.error_code == "timeout"


async def test_a_long_spreadsheet_is_read_up_to_the_row_cap_and_says_what_was_left(alice):
    file = await uploaded(alice, "long.xlsx", xlsx_rows(20_000, 5))
    assert file.status == UploadedFile.Status.READY
    lines = file.text.splitlines()
    assert lines[:2] == ["[Sheet: S0]", "| 0 | 0 | 0 | 0 | 0 |"]
    assert len(lines) == 1 + SPREADSHEET_MAX_ROWS + 1
    assert lines[-1] == (
        f"[Rows {SPREADSHEET_MAX_ROWS + 1}–20000 were not read: "
        f"at most {SPREADSHEET_MAX_ROWS} rows of a workbook are.]"
    )


async def test_files_wait_their_turn_and_all_get_read(alice):
    responses = await upload(
        await logged_in(alice),
        "a.txt",
        b"first",
        *((f"{n}.txt", f"file {n}".encode()) for n in range(5)),
    )
    assert responses.status_code == 200
    await background.idle()
    texts = [f.text async for f in UploadedFile.objects.order_by("id")]
    assert texts == ["first", *(f"file {n}" for n in range(5))]
