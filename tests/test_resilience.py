"""Answers outlive the process writing them: a lease per answer, taken over in Kimi's
partial mode when its writer dies; a stopping process finishes or hands over its answers;
the channel layer going away never loses an answer."""

import asyncio
import threading
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from accounts.models import Usage
from conversations import generation, resume, writer
from conversations.models import Conversation, Message
from realtime import lifecycle
from tests.helpers.chat import (
    FINAL,
    add_thread,
    answer,
    frames_until_final,
    generation_finished,
    open_chat,
    streamed_text,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_kimi_clients"),
]

STORY = ["Once", " upon", " a", " time", " there", " was", " a", " cat."]


@pytest.fixture
def conversation(alice):
    return Conversation.objects.create(owner=alice, model="kimi-k2.6", title="Story")


@pytest.fixture(autouse=True)
def _serving():
    """Each test starts in a process that takes answers."""
    lifecycle.forget()
    yield
    lifecycle.forget()


def left_by_a_dead_process(conversation, content: str, **fields) -> Message:
    """A question and its answer as a process that died mid-stream left them: streaming,
    saved up to its last save, its lease lapsed."""
    _, orphan = add_thread(
        conversation,
        {"role": "user", "content": "Tell me a story"},
        {
            "role": "assistant",
            "state": "streaming",
            "content": content,
            "model": "kimi-k2.6",
            "lease_owner": "dead-host:1:0",
            "lease_expires": timezone.now() - timedelta(seconds=1),
            **fields,
        },
    )
    return orphan


async def test_an_answer_whose_writer_died_goes_on_in_partial_mode_on_the_pages(
    kimi, alice, conversation
):
    kimi.script.tokens = STORY
    orphan = await sync_to_async(left_by_a_dead_process)(conversation, "Once upon a")
    chat = await open_chat(alice, conversation)

    taken = await resume.answers_take_over()
    frames = await frames_until_final(chat)
    await chat.disconnect(timeout=10)

    assert [g.answer.pk for g in taken] == [orphan.pk]
    # The page is shown the answer as saved, then the rest: one answer, whole.
    shown = next(frame for frame in frames if FINAL.search(frame))
    assert FINAL.search(shown).group(1) == "streaming" and "Once upon a" in shown
    assert streamed_text(frames) == " time there was a cat."
    sent = kimi.streams[-1].body["messages"]
    assert sent[-1] == {"role": "assistant", "content": "Once upon a", "partial": True}
    saved = await answer(conversation)
    assert saved.pk == orphan.pk and saved.content == "Once upon a time there was a cat."
    assert (saved.state, saved.resumes, saved.lease_owner) == ("done", 1, lifecycle.PROCESS)
    # What the dead process was sent is counted by estimate, then the resumed request.
    row = await Usage.objects.aget(user=alice)
    assert row.messages == 2 and row.completion_tokens > len(kimi.script.tokens)


async def test_exactly_one_process_takes_an_answer_over(kimi, alice, conversation):
    orphan = await sync_to_async(left_by_a_dead_process)(conversation, "Once")
    first = await sync_to_async(resume.answers_claim)()
    second = await sync_to_async(resume.answers_claim)()
    assert [a.pk for a, _, _ in first] == [orphan.pk] and second == []
    # A running answer's lease holds: nothing to take.
    await sync_to_async(Message.objects.filter(pk=orphan.pk).update)(
        lease_expires=timezone.now() + timedelta(seconds=30), lease_owner="alive:2:0"
    )
    assert await sync_to_async(resume.answers_claim)() == []
    # Nor one of this process's own whose lease lapsed: taken in, it is about to be written
    # here (a process seconds behind under a burst), not by a second writer.
    await sync_to_async(Message.objects.filter(pk=orphan.pk).update)(
        lease_expires=timezone.now() - timedelta(seconds=1), lease_owner=lifecycle.PROCESS
    )
    assert await sync_to_async(resume.answers_claim)() == []


async def test_an_answer_that_cannot_go_on_is_left_interrupted_with_continue(
    kimi, alice, conversation, settings
):
    settings.MOONSHOT_API_KEY = ""
    orphan = await sync_to_async(left_by_a_dead_process)(conversation, "Once upon")
    chat = await open_chat(alice, conversation)
    assert await resume.answers_take_over() == []
    frame = await chat.receive_from(30)
    await chat.disconnect(timeout=10)
    assert FINAL.search(frame).group(1) == "interrupted" and ">Continue</button>" in frame
    saved = await answer(conversation)
    assert (saved.pk, saved.state, saved.content) == (orphan.pk, "interrupted", "Once upon")
    assert kimi.streams == []


async def test_an_answer_taken_over_too_often_is_left_interrupted(
    kimi, alice, conversation, settings
):
    settings.ANSWER_MAX_RESUMES = 2
    await sync_to_async(left_by_a_dead_process)(conversation, "Once", resumes=2)
    assert await resume.answers_take_over() == []
    assert (await answer(conversation)).state == "interrupted"


async def test_kimi_refusing_to_go_on_leaves_the_words_to_continue(kimi, alice, conversation):
    kimi.script.status = 500
    await sync_to_async(left_by_a_dead_process)(conversation, "Once upon")
    (taken,) = await resume.answers_take_over()
    await asyncio.wait_for(asyncio.shield(taken.task), 10)
    saved = await answer(conversation)
    assert (saved.state, saved.content, saved.can_continue) == ("interrupted", "Once upon", True)


async def test_a_dead_writer_never_holds_up_a_new_message(kimi, alice, conversation):
    await sync_to_async(left_by_a_dead_process)(conversation, "Once upon")
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Something else, then", "client_id": "c2"})
    frames = await frames_until_final(chat)
    assert FINAL.search(frames[-1]).group(1) == "done"
    # The thread moved on past the old answer: it is not written on beside the new one.
    assert await resume.answers_take_over() == []
    await chat.disconnect(timeout=10)
    states = [m.state async for m in conversation.messages.filter(role="assistant")]
    assert states == ["interrupted", "done"]


async def test_stop_reaches_an_answer_taken_over(kimi, alice, conversation):
    kimi.script.tokens = STORY
    kimi.script.stall_after = 2
    await sync_to_async(left_by_a_dead_process)(conversation, "Once")
    chat = await open_chat(alice, conversation)
    await resume.answers_take_over()
    frames = []
    while streamed_text(frames) != " upon a":
        frames.append(await chat.receive_from(30))
    await chat.send_json_to({"action": "stop"})
    frames = await frames_until_final(chat)
    await chat.disconnect(timeout=10)
    assert FINAL.search(frames[-1]).group(1) == "stopped"
    await sync_to_async(kimi.wait_for, thread_sensitive=False)(
        lambda: kimi.streams[-1].closed_early
    )
    assert (await answer(conversation)).content == "Once upon a"


async def test_a_lost_lease_ends_the_old_writer_without_a_word_more(kimi, alice, conversation):
    kimi.script.tokens = STORY
    kimi.script.stall_after = 3
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Tell me a story", "client_id": "c1"})
    frames = []
    while streamed_text(frames) != "Once upon a":
        frames.append(await chat.receive_from(30))
    writing = generation.running(conversation.pk)
    # Another process took it over (this one could not renew its lease in time).
    await sync_to_async(Message.objects.filter(pk=writing.answer.pk).update)(
        lease_owner="other:2:0", content="Once upon a time"
    )
    await resume.leases_renew()
    await asyncio.wait_for(asyncio.shield(writing.task), 10)
    await chat.disconnect(timeout=10)
    saved = await answer(conversation)
    assert (saved.state, saved.content, saved.lease_owner) == (
        "streaming",
        "Once upon a time",
        "other:2:0",
    )


async def test_a_writer_whose_save_finds_another_owner_ends_there(kimi, alice, conversation):
    """Before its next renewal, a writer that lost its answer learns it from its next save
    (every save is conditional on its name on the row): it writes and sends nothing more."""
    kimi.script.tokens = [f" w{i}" for i in range(40)]
    kimi.script.delay = 0.05
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Count", "client_id": "c1"})
    frames = []
    while not streamed_text(frames):
        frames.append(await chat.receive_from(30))
    writing = generation.running(conversation.pk)
    await sync_to_async(Message.objects.filter(pk=writing.answer.pk).update)(
        lease_owner="other:2:0", content="taken over"
    )
    await asyncio.wait_for(asyncio.shield(writing.task), 10)  # its next save ends it
    assert writing.lost
    await chat.disconnect(timeout=10)
    saved = await answer(conversation)
    assert (saved.state, saved.content, saved.lease_owner) == (
        "streaming",
        "taken over",
        "other:2:0",
    )
    await sync_to_async(kimi.wait_for, thread_sensitive=False)(
        lambda: kimi.streams[-1].closed_early
    )


async def test_a_writer_unsure_of_its_lease_sends_nothing_until_a_renewal_says_it_holds(
    kimi, alice, conversation, settings
):
    """A renewal held up (a busy machine) must not let two processes stream one answer: past
    the part of its lease it counts on, the writer holds its text back; once the renewal
    goes through, the page gets the rest, whole and once."""
    settings.ANSWER_LEASE = 0.6
    words = [f" w{i}" for i in range(30)]
    kimi.script.tokens, kimi.script.delay = words, 0.03
    resume.keep_watch()  # renews this process's leases, in their own thread
    held_up = threading.Event()
    try:
        chat = await open_chat(alice, conversation)
        await chat.send_json_to({"message": "Count", "client_id": "c1"})
        frames = [await chat.receive_from(30)]
        while not streamed_text(frames):
            frames.append(await chat.receive_from(30))
        writer._renewing.submit(held_up.wait)  # the next renewal waits behind this
        await sync_to_async(kimi.wait_for, thread_sensitive=False)(
            lambda: kimi.streams[-1].last_chunk_at
        )
        # Kimi has sent every word; the lease is no longer sure: the page got only some.
        while not await chat.receive_nothing(0.3):
            frames.append(await chat.receive_from(30))
        assert len(streamed_text(frames)) < len("".join(words))
        assert not any(
            FINAL.search(frame).group(1) == "done" for frame in frames if FINAL.search(frame)
        )

        held_up.set()
        frames += await frames_until_final(chat)
        await chat.disconnect(timeout=10)
        assert streamed_text(frames) == "".join(words)
        assert (await answer(conversation)).content == "".join(words)
    finally:
        held_up.set()
        resume._watch.task.cancel()
        writer.leases_forget()


async def test_a_stopping_process_takes_no_new_message_and_the_page_keeps_it(
    kimi, alice, conversation
):
    await lifecycle.drain(0)
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Are you there?", "client_id": "c1"})
    frame = await chat.receive_from(30)
    await chat.disconnect(timeout=10)
    # The composer error, and no message shown: the page keeps the text to send again.
    assert 'id="composer-error"' in frame and "restarting" in frame
    assert await conversation.messages.acount() == 0


async def test_a_stopping_process_lets_its_answers_finish(kimi, alice, conversation):
    kimi.script.tokens = STORY
    kimi.script.delay = 0.02
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Tell me a story", "client_id": "c1"})
    await chat.receive_from(30)
    await resume.drain(30)
    await chat.disconnect(timeout=10)
    saved = await answer(conversation)
    assert (saved.state, saved.content) == ("done", "".join(STORY))


async def test_what_runs_past_the_grace_is_handed_over_and_goes_on_elsewhere(
    kimi, alice, conversation
):
    kimi.script.tokens = STORY
    kimi.script.stall_after = 3
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Tell me a story", "client_id": "c1"})
    frames = []
    while streamed_text(frames) != "Once upon a":
        frames.append(await chat.receive_from(30))
    await resume.drain(0.1)
    handed = await answer(conversation)
    assert (handed.state, handed.content, handed.lease_owner) == ("streaming", "Once upon a", "")
    assert handed.lease_expires <= timezone.now()
    row = await Usage.objects.aget(user=alice)
    assert row.messages == 1  # the tokens of the first request, counted by the first writer

    # The next process takes it over at once, and goes on from the saved text.
    kimi.script.stall_after = None
    assert len(await resume.answers_take_over()) == 1
    frames = await frames_until_final(chat)
    await chat.disconnect(timeout=10)
    assert streamed_text(frames).endswith(" time there was a cat.")
    saved = await answer(conversation)
    assert (saved.state, saved.content) == ("done", "".join(STORY))
    await Usage.objects.aget(user=alice, messages=2)  # not counted twice
    await generation_finished(conversation)


def test_repair_leaves_unfinished_answers_for_the_server_to_resume(settings, kimi, conversation):
    from tests.test_repair import repair

    settings.REDIS_URL = ""
    orphan = left_by_a_dead_process(
        conversation, "Once", lease_expires=timezone.now() + timedelta(seconds=30)
    )
    assert repair().strip() == "Left 1 unfinished answer(s) for the server to resume."
    orphan.refresh_from_db()
    assert orphan.state == "streaming" and orphan.lease_expires <= timezone.now()
    assert [a.pk for a, _, _ in resume.answers_claim()] == [orphan.pk]
