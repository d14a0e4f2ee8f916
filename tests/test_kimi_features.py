"""Kimi's own features over the real socket and the Kimi stub: thinking streamed, saved,
resumed and stopped; the Thinking switch; web search rounds; Continue in partial mode; usage
with cached tokens and searches."""

import html
import json
import re

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from django.utils import timezone

from accounts.models import Usage
from conversations.models import Conversation
from tests.helpers.chat import (
    FINAL,
    add_thread,
    answer,
    frames_until_final,
    open_chat,
    streamed_text,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_kimi_clients"),
]


def thought_text(frames: list[str]) -> str:
    found = re.findall(
        r'hx-swap-oob="beforeend:#msg-\d+-thinking">(.*?)</div>', "".join(frames), re.S
    )
    return "".join(found)


@pytest.fixture
def k25(alice):
    return Conversation.objects.create(owner=alice, model="kimi-k2.6", title="Thinking")


async def test_kimi_thinks_first_and_the_thinking_is_kept_apart_from_the_answer(kimi, alice, k25):
    kimi.script.reasoning = ["The user", " greets me."]
    kimi.script.tokens = ["Hello", "!"]
    chat = await open_chat(alice, k25)
    await chat.send_json_to({"message": "Hi", "client_id": "c1"})
    frames = await frames_until_final(chat)
    await chat.disconnect(timeout=10)

    assert thought_text(frames) == "The user greets me."
    assert streamed_text(frames) == "Hello!"
    # Every thought reaches the page before the first word of the answer, and the section
    # folds once the answer begins ("Thought for N s").
    text = "".join(frames)
    assert text.index("greets me.") < text.index('-body">Hello')
    assert re.search(r'id="msg-\d+-thinking-time" hx-swap-oob="true">Thought for \d+ s', text)
    saved = await answer(k25)
    assert (saved.content, saved.thinking) == ("Hello!", "The user greets me.")
    assert saved.thinking_seconds is not None
    # The final frame shows it folded: no "open".
    assert '<details class="thinking" aria-label="Thinking">' in frames[-1]
    # Reasoning counts as completion tokens (Kimi's count).
    assert saved.completion_tokens == 4


async def test_the_thinking_is_never_sent_back_to_kimi(kimi, alice, k25):
    chat = await open_chat(alice, k25)
    for i, text in enumerate(["One", "Two"]):
        await chat.send_json_to({"message": text, "client_id": f"c{i}"})
        await frames_until_final(chat)
    await chat.disconnect(timeout=10)
    history = kimi.streams[-1].body["messages"]
    assert [m["role"] for m in history] == ["user", "assistant", "user"]
    assert all("reasoning_content" not in m for m in history)
    assert "think" not in history[1]["content"]


async def test_the_thinking_switch_turns_it_off_and_is_kept(kimi, alice, k25):
    chat = await open_chat(alice, k25)
    # The composer sends its switches; Thinking left out is off.
    await chat.send_json_to({"message": "Quick", "client_id": "c1", "switches": "on"})
    frames = await frames_until_final(chat)
    assert thought_text(frames) == ""
    assert kimi.streams[-1].body["thinking"] == {"type": "disabled"}
    assert not (await Conversation.objects.aget(pk=k25.pk)).thinking

    await chat.send_json_to(
        {"message": "Think", "client_id": "c2", "switches": "on", "thinking": "on"}
    )
    frames = await frames_until_final(chat)
    await chat.disconnect(timeout=10)
    assert thought_text(frames) == "Let me think about it."
    assert "thinking" not in kimi.streams[-1].body


async def test_models_that_never_think_get_no_thinking_field_nor_fixed_sampling(older_kimi, alice):
    kimi = older_kimi
    conversation = await Conversation.objects.acreate(
        owner=alice, model="moonshot-v1-8k", temperature=0.3
    )
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Hi", "client_id": "c1"})
    frames = await frames_until_final(chat)
    await chat.disconnect(timeout=10)
    body = kimi.streams[-1].body
    assert "thinking" not in body and body["temperature"] == 0.3
    assert thought_text(frames) == ""
    # kimi-k2.6 fixes its sampling: the conversation's temperature is not sent.
    await Conversation.objects.filter(pk=conversation.pk).aupdate(model="kimi-k2.6")
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Again", "client_id": "c2"})
    await frames_until_final(chat)
    await chat.disconnect(timeout=10)
    assert "temperature" not in kimi.streams[-1].body


async def test_stop_while_kimi_thinks_keeps_what_it_thought(kimi, alice, k25):
    kimi.script.reasoning = ["Hmm", " let", " me", " see", " more", " and", " more"]
    kimi.script.delay = 0.2
    chat = await open_chat(alice, k25)
    await chat.send_json_to({"message": "Hard one", "client_id": "c1"})
    await sync_to_async(kimi.wait_for, thread_sensitive=False)(
        lambda: kimi.streams and kimi.streams[-1].first_thought_at is not None
    )
    frames = [await chat.receive_from(30)]
    while "Hmm" not in thought_text(frames):
        frames.append(await chat.receive_from(30))
    await chat.send_json_to({"action": "stop"})
    frames += await frames_until_final(chat)
    await chat.disconnect(timeout=10)

    saved = await answer(k25)
    assert saved.state == "stopped" and saved.content == ""
    assert saved.thinking.startswith("Hmm") and saved.thinking == thought_text(frames)
    await sync_to_async(kimi.wait_for, thread_sensitive=False)(
        lambda: kimi.streams[-1].closed_early
    )


async def test_another_tab_resumes_mid_thinking_without_a_loss_or_a_double(kimi, alice, k25):
    kimi.script.reasoning = [f" t{i}" for i in range(12)]
    kimi.script.tokens = ["Done."]
    kimi.script.delay = 0.05
    first = await open_chat(alice, k25)
    await first.send_json_to({"message": "Go", "client_id": "c1"})
    await sync_to_async(kimi.wait_for, thread_sensitive=False)(
        lambda: kimi.streams and kimi.streams[-1].first_thought_at is not None
    )
    answer_row = await answer(k25)

    # A second tab opens, showing the thinking as far as it was saved (here: nothing yet),
    # and asks for the rest.
    second = await open_chat(alice, k25)
    key = f"{answer_row.pk}:thinking"
    await second.send_json_to({"action": "sync", "streaming": {str(answer_row.pk): 0, key: 0}})
    frames = await frames_until_final(second)
    await frames_until_final(first)
    for chat in (first, second):
        await chat.disconnect(timeout=10)
    assert thought_text(frames) == "".join(f" t{i}" for i in range(12))
    assert streamed_text(frames) == "Done."


async def test_web_search_and_page_reading_run_through_kimis_official_tools(kimi, alice):
    conversation = await Conversation.objects.acreate(owner=alice, model="kimi-k3", web_search=True)
    kimi.script.searches = ["kimi k3", "moonshot"]
    kimi.script.fetches = ["https://example.org/news/k3"]
    kimi.script.tokens = ["Found", " it."]
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "What is new?", "client_id": "c1"})
    frames = await frames_until_final(chat)
    await chat.disconnect(timeout=10)

    text = "".join(frames)
    assert "Searching: moonshot" in text and "Reading: example.org/news/k3" in text
    assert streamed_text(frames) == "Found it."
    first, third = kimi.streams[-3], kimi.streams[-1]
    # Declared as Kimi declares them, with thinking on (kimi-k3 always thinks).
    assert [t["function"]["name"] for t in first.body["tools"]] == ["web_search", "fetch"]
    assert "thinking" not in first.body and kimi.declared == ["web-search", "fetch"]
    # Each call ran as a fiber with Kimi's own arguments; each output went back verbatim
    # (the search's encrypted), on a turn that kept its reasoning.
    assert [(f["name"], f["arguments"]) for f in kimi.fibers] == list(kimi.called.values())
    outputs = [m["content"] for m in third.body["messages"] if m["role"] == "tool"]
    assert outputs == [f["output"] for f in kimi.fibers]
    assert outputs[0].startswith("----MOONSHOT ENCRYPTED BEGIN----")
    turns = [m for m in third.body["messages"] if m.get("tool_calls")]
    assert [t["reasoning_content"] for t in turns] == ["Let me think about it."] * 2
    saved = await answer(conversation)
    assert (saved.state, saved.searches, saved.content) == ("done", 2, "Found it.")
    assert saved.pages_read == ["https://example.org/news/k3"]
    # The finished answer lists what it searched and read.
    assert 'href="https://example.org/news/k3"' in frames[-1] and "Searched:" in frames[-1]
    row = await Usage.objects.aget(user=alice)
    assert row.searches == 2 and row.messages == 1


async def test_a_failed_tool_is_unavailable_to_kimi_and_the_answer_goes_on(kimi, alice):
    conversation = await Conversation.objects.acreate(owner=alice, model="kimi-k3", web_search=True)
    kimi.script.failing_fibers = ["web_search"]
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Search", "client_id": "c1"})
    frames = await frames_until_final(chat)
    await chat.disconnect(timeout=10)
    assert FINAL.search(frames[-1]).group(1) == "done"
    tool = next(m for m in kimi.streams[-1].body["messages"] if m["role"] == "tool")
    assert tool["content"].startswith("The tool is unavailable")


async def test_kimi_that_keeps_calling_tools_is_told_to_answer_after_eight_rounds(kimi, alice):
    conversation = await Conversation.objects.acreate(
        owner=alice, model="kimi-k2.6", web_search=True
    )
    kimi.script.more_searches = 20
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Search forever", "client_id": "c1"})
    frames = await frames_until_final(chat)
    await chat.disconnect(timeout=10)
    assert FINAL.search(frames[-1]).group(1) == "done"
    assert len(kimi.streams) == 9 and kimi.streams[-1].body["tool_choice"] == "none"
    last = [m for m in kimi.streams[-1].body["messages"] if m["role"] == "tool"][-1]
    assert last["content"].startswith("No more tool calls")
    assert len(kimi.fibers) == 7  # the eighth round's call was answered, not run


async def test_without_formulas_web_search_falls_back_to_the_builtin_search(kimi, alice):
    kimi.script.formulas = False
    kimi.script.searches = ["kimi", "moonshot"]
    conversation = await Conversation.objects.acreate(
        owner=alice, model="kimi-k2.6", web_search=True
    )
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "What is new?", "client_id": "c1"})
    frames = await frames_until_final(chat)
    await chat.disconnect(timeout=10)
    first, second = kimi.streams[-2:]
    assert first.body["tools"] == [
        {"type": "builtin_function", "function": {"name": "$web_search"}}
    ]
    # The builtin search turns k2.6's thinking off; the calls go back unchanged.
    assert first.body["thinking"] == {"type": "disabled"}
    tools = [m for m in second.body["messages"] if m["role"] == "tool"]
    assert [m["content"] for m in tools] == list(kimi.searched.values())[-2:]
    assert "Searching: moonshot" in "".join(frames)
    assert (await answer(conversation)).searches == 2
    # kimi-k3 refuses the builtin search's echo: it answers without tools.
    await Conversation.objects.filter(pk=conversation.pk).aupdate(model="kimi-k3")
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Again", "client_id": "c2", "model": "kimi-k3"})
    frames = await frames_until_final(chat)
    await chat.disconnect(timeout=10)
    assert FINAL.search(frames[-1]).group(1) == "done"
    assert "tools" not in kimi.streams[-1].body
    # The composer hides the switch for kimi-k3 then, saying why.
    client = Client()
    await sync_to_async(client.force_login)(alice)
    page = (await sync_to_async(client.get)(f"/c/{conversation.pk}/")).content.decode()
    modes = json.loads(html.unescape(re.search(r'data-thinking="([^"]*)"', page)[1]))
    assert modes["kimi-k3"]["search"] is False and modes["kimi-k2.6"]["search"] is True
    assert "Kimi offers no web search for this model here." in page


async def test_a_thinking_model_keeps_its_reasoning_on_the_tool_call_turn(kimi, alice, settings):
    settings.KIMI_MODELS = ["kimi-k3", "kimi-k2.6"]
    conversation = await Conversation.objects.acreate(owner=alice, model="kimi-k3", web_search=True)
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Search and think", "client_id": "c1"})
    frames = await frames_until_final(chat)
    await chat.disconnect(timeout=10)
    # The stub, like Kimi, answers 400 when the tool-call turn lacks its reasoning.
    assert FINAL.search(frames[-1]).group(1) == "done"
    turn = next(m for m in kimi.streams[-1].body["messages"] if m.get("tool_calls"))
    assert turn["reasoning_content"] == "Let me think about it."


async def test_continue_goes_on_from_an_answer_cut_off_by_its_max_tokens(kimi, alice):
    conversation = await Conversation.objects.acreate(owner=alice, model="kimi-k2.6")
    kimi.script.tokens = ["The first", " half"]
    kimi.script.finish_reason = "length"
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Tell a story", "client_id": "c1"})
    frames = await frames_until_final(chat)
    assert ">Continue</button>" in frames[-1]
    cut = await answer(conversation)

    kimi.script.tokens = [" and", " the end."]
    kimi.script.finish_reason = "stop"
    await chat.send_json_to({"action": "continue", "message_id": cut.pk})
    frames = await frames_until_final(chat)
    await chat.disconnect(timeout=10)

    # kimi-k2.6 thought before it began: the reasoning goes with the words so far.
    sent = kimi.streams[-1].body["messages"]
    assert sent[-1] == {
        "role": "assistant",
        "content": "The first half",
        "partial": True,
        "reasoning_content": "Let me think about it.",
    }
    assert streamed_text(frames) == " and the end."
    saved = await answer(conversation)
    assert saved.pk == cut.pk and saved.content == "The first half and the end."
    assert (saved.state, saved.finish_reason) == ("done", "stop")
    assert ">Continue</button>" not in frames[-1]
    assert await conversation.messages.acount() == 2  # the same answer, no new message
    row = await Usage.objects.aget(user=alice)
    assert row.messages == 2  # both requests are in the ledger


async def test_stopped_and_interrupted_answers_can_be_continued_but_finished_ones_not(alice):
    conversation = await Conversation.objects.acreate(owner=alice, model="kimi-k2.6")
    rows = await sync_to_async(add_thread)(
        conversation,
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": "Half", "state": "stopped"},
    )
    stopped = rows[-1]
    assert stopped.can_continue
    stopped.state, stopped.finish_reason = "done", "stop"
    assert not stopped.can_continue
    stopped.state = "interrupted"
    assert stopped.can_continue
    stopped.content = ""
    assert not stopped.can_continue


async def test_cached_tokens_reach_the_answer_and_the_ledger(kimi, alice):
    conversation = await Conversation.objects.acreate(owner=alice, model="kimi-k2.6")
    kimi.script.cached_tokens = 7
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Hi", "client_id": "c1"})
    await frames_until_final(chat)
    await chat.disconnect(timeout=10)
    assert (await answer(conversation)).cached_tokens == 7
    row = await Usage.objects.aget(user=alice, day=timezone.localdate())
    assert row.cached_tokens == 7


async def test_a_title_request_is_small_and_counted(kimi, alice, settings):
    settings.KIMI_AUTO_TITLE = True
    chat = await open_chat(alice)
    await chat.send_json_to({"message": "Name me", "client_id": "c1", "model": "kimi-k2.6"})
    await frames_until_final(chat)
    title_frame = await chat.receive_from(30)
    await chat.disconnect(timeout=10)
    assert "A stub title" in title_frame
    asked = [r for r in kimi.requests if not r.body.get("stream")][-1].body
    assert asked["max_completion_tokens"] == 32 and asked["thinking"] == {"type": "disabled"}
    row = await Usage.objects.aget(user=alice)
    assert row.messages == 1  # the answer; the title adds tokens, not an answer


async def test_stop_and_resume_in_the_middle_of_a_searched_answer(kimi, alice):
    conversation = await Conversation.objects.acreate(
        owner=alice, model="kimi-k2.6", web_search=True
    )
    kimi.script.tokens = [f" w{i}" for i in range(40)]
    kimi.script.delay = 0.05
    first = await open_chat(alice, conversation)
    await first.send_json_to({"message": "Search then write", "client_id": "c1"})
    # The search round is over and the answer is being written: another tab catches up.
    await sync_to_async(kimi.wait_for, thread_sensitive=False)(
        lambda: len(kimi.streams) == 2 and kimi.streams[-1].first_chunk_at is not None
    )
    writing = await answer(conversation)
    second = await open_chat(alice, conversation)
    await second.send_json_to({"action": "sync", "streaming": {str(writing.pk): 0}})
    frames = [await second.receive_from(30)]
    while not streamed_text(frames):
        frames.append(await second.receive_from(30))
    await second.send_json_to({"action": "stop"})
    frames += await frames_until_final(second)
    await frames_until_final(first)
    for chat in (first, second):
        await chat.disconnect(timeout=10)

    saved = await answer(conversation)
    assert saved.state == "stopped" and saved.searches == 1
    # The second tab saw the answer from its first word, none twice, up to the Stop.
    assert streamed_text(frames) == saved.content and saved.content.startswith(" w0")
    await sync_to_async(kimi.wait_for, thread_sensitive=False)(
        lambda: kimi.streams[-1].closed_early
    )
    row = await Usage.objects.aget(user=alice)
    assert row.searches == 1


async def test_the_export_keeps_the_thinking_apart(kimi, alice, k25):
    chat = await open_chat(alice, k25)
    await chat.send_json_to({"message": "Hi", "client_id": "c1"})
    await frames_until_final(chat)
    await chat.disconnect(timeout=10)
    client = Client()
    await sync_to_async(client.force_login)(alice)
    exported = (await sync_to_async(client.get)(f"/c/{k25.pk}/export.md")).content.decode()
    assert re.search(r"<details><summary>Thought for \d+ s</summary>\s+Let me think", exported)
    assert exported.index("Let me think about it.") < exported.index("Hello from the Kimi stub.")
