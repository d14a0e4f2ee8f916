"""Redis carries frames, not answers: an answer streaming while Redis stops is finished,
saved and counted; sockets are refused (never a 500) while it is away, and a page that
reconnects once it is back is brought up to date from the database.

Each test runs a redis-server of its own on a free port, stopped and started again by the
test; the shared Redis is never touched."""

import os

import pytest
from asgiref.sync import sync_to_async

from accounts.models import Usage
from conversations.models import Conversation
from tests.e2e.cluster import REDIS_SERVER, Redis
from tests.helpers.chat import FINAL, answer, connect, generation_finished, open_chat, streamed_text

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_kimi_clients"),
]


@pytest.fixture
def redis(tmp_path, settings):
    if not os.path.exists(REDIS_SERVER):
        if os.environ.get("CI"):
            pytest.fail(f"{REDIS_SERVER} is missing: CI must run the Redis outage tests")
        pytest.skip(f"needs redis-server ({REDIS_SERVER})")
    server = Redis(tmp_path)
    server.start()
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [server.url]},
        }
    }
    yield server
    server.stop()


@pytest.fixture
def conversation(alice):
    return Conversation.objects.create(owner=alice, model="kimi-k2.6", title="Outage")


async def test_an_answer_streaming_while_redis_stops_is_finished_saved_and_counted(
    kimi, alice, conversation, redis
):
    words = [f" w{i}" for i in range(40)]
    kimi.script.tokens, kimi.script.delay = words, 0.02
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Count", "client_id": "c1"})
    frames: list[str] = []
    while not streamed_text(frames):
        frames.append(await chat.receive_from(30))

    await sync_to_async(redis.stop)()
    await generation_finished(conversation)
    saved = await answer(conversation)
    assert (saved.state, saved.content) == ("done", "".join(words))
    row = await Usage.objects.aget(user=alice)
    # What Kimi counted: what kimi-k2.6 thought, then the words.
    assert row.messages == 1 and row.completion_tokens == len(kimi.script.reasoning) + len(words)

    # While Redis is away a socket is refused (the page tries again), never answered 500.
    refused = await connect(alice, f"/ws/conversations/{conversation.pk}/")
    connected, _ = await refused.connect(30)
    assert not connected
    # Back again: the page reconnects and is brought up to date from the database.
    await sync_to_async(redis.start)()
    again = await open_chat(alice, conversation)
    await again.send_json_to({"action": "sync", "streaming": {str(saved.pk): 3}})
    frame = await again.receive_from(30)
    await again.disconnect(timeout=10)
    assert FINAL.search(frame).group(1) == "done" and "w39" in frame
