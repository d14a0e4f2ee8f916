"""Regenerate, Edit, versions, context windows, limits and titles, over the real socket and
the Kimi stub."""

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from conversations import generation
from conversations.models import Conversation, Message
from realtime import live
from tests.helpers.chat import FINAL, add_thread, frames_until_final, open_chat, streamed_text

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_kimi_clients"),
]


@pytest.fixture(autouse=True)
def _small_window(settings):
    """The tests' model has a small window (8k, as moonshot-v1-8k had): what does not fit
    shows with little text."""
    settings.KIMI_CONTEXT_WINDOWS = {"kimi-k2.6": 8192}


@pytest.fixture
def conversation(alice):
    return Conversation.objects.create(owner=alice, model="kimi-k2.6", title="Test")


async def ask(chat, text: str, client_id: str) -> list[str]:
    await chat.send_json_to({"message": text, "client_id": client_id})
    return await frames_until_final(chat)


async def thread_contents(conversation) -> list[str]:
    @sync_to_async
    def contents():
        conversation.refresh_from_db()
        ids = conversation.thread().ids
        return [m.content for m in Message.objects.filter(id__in=ids).order_by("id")]

    return await contents()


async def test_regenerate_keeps_the_old_answer_as_a_version(kimi, alice, conversation):
    chat = await open_chat(alice, conversation)
    kimi.script.tokens = ["First"]
    await ask(chat, "Hi", "c1")
    first = await conversation.messages.filter(role="assistant").alast()

    kimi.script.tokens = ["Second"]
    await chat.send_json_to({"action": "regenerate", "message_id": first.pk})
    frames = await frames_until_final(chat)
    # The thread is redrawn with the new version streaming in place of the old one.
    assert f'id="msg-{first.pk}"' not in frames[0] and 'data-state="streaming"' in frames[0]
    assert streamed_text(frames) == "Second"
    assert "2/2" in frames[-1] and 'aria-label="Previous version"' in frames[-1]
    assert await thread_contents(conversation) == ["Hi", "Second"]
    assert len(kimi.streams) == 2
    assert kimi.streams[1].body["messages"] == [{"role": "user", "content": "Hi"}]

    # Flip back to version 1: the page and the history sent next follow it.
    await chat.send_json_to({"action": "select", "message_id": first.pk})
    frame = await chat.receive_from(30)
    assert frame.startswith('<div id="messages"')
    assert "First" in frame and "1/2" in frame and "Second" not in frame
    kimi.script.tokens = ["Third"]
    await ask(chat, "And then?", "c2")
    await chat.disconnect(timeout=10)
    assert [m["content"] for m in kimi.streams[2].body["messages"]] == ["Hi", "First", "And then?"]
    assert await thread_contents(conversation) == ["Hi", "First", "And then?", "Third"]


async def test_edit_resends_the_question_on_a_new_branch(kimi, alice, conversation):
    chat = await open_chat(alice, conversation)
    await ask(chat, "What is 2+2?", "c1")
    await ask(chat, "And 3+3?", "c2")
    second_question = await conversation.messages.aget(content="And 3+3?")
    first_question = await conversation.messages.aget(content="What is 2+2?")

    kimi.script.tokens = ["Nine"]
    await chat.send_json_to(
        {
            "action": "edit",
            "message_id": first_question.pk,
            "message": "What is 4+5?",
            "client_id": "e1",
        }
    )
    frames = await frames_until_final(chat)
    assert "What is 4+5?" in frames[0] and "And 3+3?" not in frames[0] and "2/2" in frames[0]
    assert [m["content"] for m in kimi.streams[-1].body["messages"]] == ["What is 4+5?"]
    assert await thread_contents(conversation) == ["What is 4+5?", "Nine"]

    # The old branch is still there, with everything after it.
    await chat.send_json_to({"action": "select", "message_id": first_question.pk})
    frame = await chat.receive_from(30)
    await chat.disconnect(timeout=10)
    assert frame.startswith('<div id="messages"')
    assert "What is 2+2?" in frame and "And 3+3?" in frame and "1/2" in frame
    assert (await thread_contents(conversation))[2] == second_question.content


async def test_an_edit_sent_twice_is_taken_once(kimi, alice, conversation):
    chat = await open_chat(alice, conversation)
    await ask(chat, "Hi", "c1")
    question = await conversation.messages.aget(content="Hi")
    edit = {"action": "edit", "message_id": question.pk, "message": "Hello", "client_id": "e1"}
    await chat.send_json_to(edit)
    await chat.send_json_to(edit)
    await frames_until_final(chat)
    await chat.disconnect(timeout=10)
    assert await conversation.messages.filter(content="Hello").acount() == 1
    assert len(kimi.streams) == 2


async def test_the_thread_cannot_change_while_an_answer_is_written(kimi, alice, conversation):
    chat = await open_chat(alice, conversation)
    await ask(chat, "Hi", "c1")
    first = await conversation.messages.filter(role="assistant").alast()
    kimi.script.stall_after = 1
    await chat.send_json_to({"action": "regenerate", "message_id": first.pk})
    await chat.receive_from(30)
    await chat.send_json_to({"action": "regenerate", "message_id": first.pk})  # double click
    await chat.send_json_to({"action": "select", "message_id": first.pk})
    await chat.send_json_to({"action": "stop"})
    frames = await frames_until_final(chat)
    await chat.disconnect(timeout=10)
    assert 'data-state="stopped"' in frames[-1]
    assert await conversation.messages.filter(role="assistant").acount() == 2
    assert len(kimi.streams) == 2


async def test_stop_reaches_a_generation_through_the_channel_layer(kimi, alice, conversation):
    """How Stop reaches an answer written by another process: a group message, not a call."""
    kimi.script.stall_after = 1
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Hi", "client_id": "c1"})
    await chat.receive_from(30)
    await sync_to_async(kimi.wait_for)(lambda: kimi.streams and kimi.streams[0].first_chunk_at)
    running = generation.running(conversation.pk)
    while not running.listening.is_set():
        await asyncio.wait_for(running.listening.wait(), 5)
    await live.request_stop(conversation.pk)
    frames = await frames_until_final(chat)
    await chat.disconnect(timeout=10)
    assert 'data-state="stopped"' in frames[-1]
    await sync_to_async(kimi.wait_for)(lambda: kimi.streams[0].closed_early)


async def test_the_oldest_turns_are_left_out_to_fit_the_window(kimi, alice, conversation):
    long = "word " * 4000  # ~6,700 tokens by the local estimate: one fits in 8k, two do not
    await sync_to_async(add_thread)(
        conversation,
        {"role": "user", "content": "Old question"},
        {"role": "assistant", "content": long},
        {"role": "user", "content": "Newer question"},
        {"role": "assistant", "content": "Short answer"},
    )
    chat = await open_chat(alice, conversation)
    frames = await ask(chat, "Latest question", "c1")
    await chat.disconnect(timeout=10)
    sent = [m["content"] for m in kimi.streams[0].body["messages"]]
    assert sent == ["Newer question", "Short answer", "Latest question"]
    assert "The 2 oldest messages did not fit in the model" in frames[-1]


async def test_a_message_too_long_for_the_model_is_refused_before_any_call(
    kimi, alice, conversation
):
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "字" * 12000, "client_id": "c1"})
    frame = await chat.receive_from(30)
    await chat.disconnect(timeout=10)
    assert "composer-error" in frame and "too long for kimi-k2.6" in frame
    assert kimi.requests == []
    assert await conversation.messages.acount() == 0


async def test_concurrent_answers_per_user_are_limited(kimi, alice, conversation, settings):
    settings.USER_MAX_CONCURRENT = 1
    other = await Conversation.objects.acreate(owner=alice, model="kimi-k2.6")
    kimi.script.stall_after = 1
    first = await open_chat(alice, other)
    await first.send_json_to({"message": "Long one", "client_id": "c1"})
    await first.receive_from(30)
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Another", "client_id": "c2"})
    frame = await chat.receive_from(30)
    assert "already have 1 answers being written" in frame
    await first.send_json_to({"action": "stop"})
    await frames_until_final(first)
    await first.disconnect(timeout=10)
    await chat.disconnect(timeout=10)
    assert await conversation.messages.acount() == 0


async def test_messages_per_minute_are_limited(kimi, alice, conversation, settings):
    settings.USER_MESSAGES_PER_MINUTE = 2
    chat = await open_chat(alice, conversation)
    await ask(chat, "One", "c1")
    await ask(chat, "Two", "c2")
    await chat.send_json_to({"message": "Three", "client_id": "c3"})
    frame = await chat.receive_from(30)
    assert "asked for 2 answers in the last minute" in frame
    # A minute later it is taken again.
    await Message.objects.aupdate(created_at=timezone.now() - timedelta(minutes=2))
    frames = await ask(chat, "Three", "c3")
    await chat.disconnect(timeout=10)
    assert 'data-state="done"' in frames[-1]


async def test_a_new_chat_is_named_after_its_first_answer(kimi, alice, settings):
    settings.KIMI_AUTO_TITLE = True
    kimi.script.title = '"Greetings from the stub"'
    chat = await open_chat(alice)
    await chat.send_json_to({"message": "Hello there, who are you?", "client_id": "c1"})
    await frames_until_final(chat)
    frame = await chat.receive_from(30)
    await chat.disconnect(timeout=10)
    assert 'id="conversation-title"' in frame and ">Greetings from the stub<" in frame
    conversation = await Conversation.objects.aget(owner=alice)
    assert conversation.title == "Greetings from the stub"
    title_request = next(r for r in kimi.requests if not r.body.get("stream"))
    assert "Hello there, who are you?" in title_request.body["messages"][-1]["content"]


async def test_a_name_the_user_chose_is_kept(kimi, alice, conversation, settings):
    settings.KIMI_AUTO_TITLE = True
    conversation.title, conversation.title_is_custom = "My name", True
    await conversation.asave()
    chat = await open_chat(alice, conversation)
    await ask(chat, "Hi", "c1")
    await chat.disconnect(timeout=10)
    await conversation.arefresh_from_db()
    assert conversation.title == "My name"
    assert all(r.body.get("stream") for r in kimi.requests)


async def test_a_page_that_syncs_an_abandoned_answer_sees_it_interrupted(kimi, alice, conversation):
    (_, abandoned) = await sync_to_async(add_thread)(
        conversation,
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "state": "streaming", "content": "Half"},
    )
    await Message.objects.filter(pk=abandoned.pk).aupdate(
        updated_at=timezone.now() - timedelta(minutes=5)
    )
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"action": "sync", "streaming": {str(abandoned.pk): 4}})
    frame = await chat.receive_from(30)
    await chat.disconnect(timeout=10)
    assert FINAL.search(frame).group(1) == "interrupted" and "Half" in frame


def test_start_up_repairs_every_answer_left_streaming(alice, conversation):
    add_thread(
        conversation,
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "state": "streaming", "content": "Half"},
    )
    # Without Redis the starting process is the only one: nothing can still be streaming.
    assert Message.objects.mark_interrupted(everything=True) == 1
    assert Message.objects.get(content="Half").state == "interrupted"
