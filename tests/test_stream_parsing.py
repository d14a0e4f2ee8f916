"""Kimi's stream as the server reads it (kimi.ChunkStream): through the real openai SDK over
HTTP, from a Kimi stub that writes the bytes each test gives it, cut where the test cuts them."""

import asyncio
import itertools
import json

import openai
import pytest

import kimi
from conversations.models import Conversation
from tests.helpers.chat import answer, frames_until_final, open_chat, streamed_text
from tests.helpers.kimi_stub import KimiStub

pytestmark = pytest.mark.usefixtures("close_kimi_clients")


class RawKimi(KimiStub):
    """Answers every completion with `pieces`, each one its own write; with `hold`, keeps
    the connection open after them until the client leaves."""

    pieces: list[bytes] = []
    hold = False

    async def _chat(self, request, reader, writer) -> bool:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        for piece in self.pieces:
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            await asyncio.sleep(0.005)  # each piece a read of its own
        if self.hold:
            await reader.read(1)  # until the client leaves
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return False


@pytest.fixture(scope="module")
def raw_stub():
    stub = RawKimi().start_in_thread()
    yield stub
    stub.stop()


@pytest.fixture
def raw_kimi(raw_stub, settings):
    raw_stub.pieces, raw_stub.hold = [], False
    raw_stub.requests.clear()
    settings.MOONSHOT_API_KEY = "sk-test"
    settings.MOONSHOT_BASE_URL = raw_stub.base_url
    settings.KIMI_MAX_RETRIES = 0
    settings.KIMI_AUTO_TITLE = False
    return raw_stub


def chunk(delta: dict, finish_reason: str | None = None, **extra) -> dict:
    choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
    return {"id": "c", "object": "chat.completion.chunk", "choices": [choice], **extra}


def event(data: dict) -> bytes:
    return b"data: " + json.dumps(data, ensure_ascii=False).encode() + b"\n\n"


async def read_all() -> list[dict]:
    stream = await kimi.stream_open(
        model="kimi-k2.6", messages=[{"role": "user", "content": "Hi"}], params={}
    )
    try:
        return [c async for c in stream]
    finally:
        await stream.close()


async def test_chunks_cut_anywhere_arrive_whole_and_in_order(raw_kimi):
    sent = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"reasoning_content": "Thinking"}),
        chunk({"content": "Hello 你好"}),
        chunk({}, "stop", usage={"prompt_tokens": 3, "completion_tokens": 2}),
    ]
    stream = b"".join(event(c) for c in sent) + b"data: [DONE]\n\n"
    # Cut through lines, through a character's bytes, and between an event's two newlines.
    character = stream.index("你".encode()) + 1
    ending = stream.index(b"\n\n", character) + 1
    cuts = [0, 7, 40, character, ending, len(stream) - 3, len(stream)]
    raw_kimi.pieces = [stream[a:b] for a, b in itertools.pairwise(cuts)]

    assert await read_all() == sent


async def test_it_reads_crlf_lines_comments_and_data_over_two_lines(raw_kimi):
    first, second = chunk({"content": "one"}), chunk({"content": "two"})
    text = json.dumps(second)
    middle = text.index(",")
    raw_kimi.pieces = [
        b": keep-alive\r\n\r\n",
        b"data: " + json.dumps(first).encode() + b"\r\n\r\n",
        # SSE joins an event's data lines with a newline: JSON reads it as a space.
        f"data: {text[: middle + 1]}\ndata: {text[middle + 1 :]}\n\n".encode(),
        b"data: [DONE]\r\n\r\n",
    ]

    assert await read_all() == [first, second]


async def test_kimis_error_event_mid_stream_fails_with_kimis_message(raw_kimi):
    error = {"message": "The engine is overloaded", "type": "engine_overloaded_error"}
    raw_kimi.pieces = [event(chunk({"content": "Hel"})), event({"error": error})]

    with pytest.raises(openai.APIError) as caught:
        await read_all()

    assert caught.value.message == "The engine is overloaded"
    assert caught.value.body == error
    assert kimi.error_code(caught.value) == ("unknown", "The engine is overloaded")


async def test_an_event_that_is_not_json_fails_the_stream(raw_kimi):
    raw_kimi.pieces = [event(chunk({"content": "Hel"})), b"data: {not json\n\n"]

    with pytest.raises(openai.APIError, match="not JSON"):
        await read_all()


async def test_the_stream_ends_at_done_though_kimi_keeps_the_connection_open(raw_kimi):
    raw_kimi.pieces = [event(chunk({"content": "Hi"}, "stop")), b"data: [DONE]\n\n"]
    raw_kimi.hold = True

    async with asyncio.timeout(10):
        assert await read_all() == [chunk({"content": "Hi"}, "stop")]


@pytest.mark.django_db(transaction=True)
async def test_an_answer_broken_by_kimis_error_keeps_its_words_and_says_why(raw_kimi, alice):
    conversation = await Conversation.objects.acreate(owner=alice, model="kimi-k2.6")
    error = {"message": "The engine is overloaded", "type": "engine_overloaded_error"}
    raw_kimi.pieces = [
        event(chunk({"role": "assistant", "content": ""})),
        event(chunk({"content": "Half an"})),
        event(chunk({"content": " answer"})),
        event({"error": error}),
    ]
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Hi", "client_id": "c1"})
    frames = await frames_until_final(chat)
    await chat.disconnect(timeout=10)

    assert streamed_text(frames) == "Half an answer"
    assert 'data-state="error"' in frames[-1]
    assert "The engine is overloaded" in frames[-1]
    saved = await answer(conversation)
    assert saved.state == "error" and saved.content == "Half an answer"
    assert saved.error_code == "unknown" and saved.error == "The engine is overloaded"
