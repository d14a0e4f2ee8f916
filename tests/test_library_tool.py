"""Kimi searching the conversation's documents itself (search_library) over the real socket
and the Kimi stub: offered only where the request used passages, answered from the files the
question referred to and no other, shown as a step, and what it found listed under the answer."""

import json

import pytest
from asgiref.sync import sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import Usage
from conversations.models import Conversation
from kimi import tools
from teams import services as teams
from tests.helpers.chat import FINAL, answer, frames_until_final, open_chat
from uploads import services
from uploads.models import UploadedFile

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_kimi_clients"),
]

SEARCH = ("search_library", json.dumps({"query": "Zephyr relief valve pressure"}))
ASKED = "@ops How often are the seals inspected?"


@pytest.fixture(autouse=True)
def _small_window(settings):
    """kimi-k3 with a small window: a library of a few hundred paragraphs is too long to send
    whole, so the question gets passages."""
    settings.KIMI_CONTEXT_WINDOWS = {"kimi-k3": 8192}


def filler(n: int) -> str:
    return (
        f"Maintenance manual, section {n}. Inspect the seals, the filters and the bearings of "
        f"unit {n}; record the readings in the logbook before the next run. " * 4
    )


def team_file(owner, team, name: str, text: str) -> UploadedFile:
    upload = SimpleUploadedFile(name, text.encode())
    saved = services.file_create(owner=owner, upload=upload, team=team)
    services.file_read(file_id=saved.file.pk)
    return UploadedFile.objects.get(pk=saved.file.pk)


@pytest.fixture
def library(alice, bob) -> dict[str, UploadedFile]:
    """alice's team Ops: a long manual about seals, and a short note about the Zephyr valve
    (which a question about seals does not pick). bob's team has a note with the same words
    and another figure: no search of alice's may find it."""
    ops = teams.team_create(user=alice, name="Ops")
    rivals = teams.team_create(user=bob, name="Rivals")
    return {
        "manual": team_file(alice, ops, "manual.txt", "\n\n".join(map(filler, range(300)))),
        "valves": team_file(
            alice, ops, "valves.txt", "Valve notes. The Zephyr relief valve opens at 42 bar."
        ),
        "theirs": team_file(
            bob, rivals, "rival.txt", "Rival notes. The Zephyr relief valve opens at 99 bar."
        ),
    }


async def ask(user, conversation, text: str) -> list[str]:
    chat = await open_chat(user, conversation)
    await chat.send_json_to({"message": text, "client_id": "c1"})
    frames = await frames_until_final(chat)
    await chat.disconnect(timeout=10)
    return frames


def offered(request) -> list[str]:
    return [t["function"]["name"] for t in request.body.get("tools", [])]


async def test_kimi_searches_the_team_library_itself_and_the_sources_grow(kimi, alice, library):
    conversation = await Conversation.objects.acreate(owner=alice, model="kimi-k3")
    kimi.script.function_calls = [SEARCH]
    kimi.script.tokens = ["It opens at 42 bar [1]."]
    frames = await ask(alice, conversation, ASKED)

    first, second = kimi.streams[-2:]
    assert offered(first) == ["search_library"]
    picked = [m["content"] for m in first.body["messages"] if m["role"] == "system"]
    assert "manual.txt" in picked[0] and "valves.txt" not in picked[0]
    # The search went back to Kimi: the passage of alice's note, not bob's, on a turn that
    # kept its reasoning (kimi-k3 thinks).
    turn, result = second.body["messages"][-2:]
    assert turn["tool_calls"][0]["function"]["name"] == "search_library"
    assert turn["reasoning_content"] == "Let me think about it."
    assert result["role"] == "tool" and result["name"] == "search_library"
    assert result["content"].startswith("[1] “valves.txt”:\nValve notes. The Zephyr")
    assert "99 bar" not in result["content"] and "rival.txt" not in result["content"]
    # Shown live as a step; a library search is no web search (Kimi bills only those).
    text = "".join(frames)
    assert "Searching the library: Zephyr relief valve pressure" in text
    saved = await answer(conversation)
    assert (saved.state, saved.content, saved.searches) == ("done", "It opens at 42 bar [1].", 0)
    assert saved.steps == [{"kind": "library", "text": "Zephyr relief valve pressure"}]
    assert [s["name"] for s in saved.sources] == ["manual.txt", "valves.txt"]
    assert f'href="/files/{library["valves"].pk}/view/"' in frames[-1]
    assert f'href="/files/{library["theirs"].pk}/view/"' not in frames[-1]
    assert "Searched the library: Zephyr relief valve pressure" in frames[-1]
    assert "web search" not in frames[-1]
    assert (await Usage.objects.aget(user=alice)).searches == 0


async def test_the_library_search_is_offered_only_where_passages_were_used(kimi, alice, library):
    kimi.script.function_calls = [SEARCH]
    short = await sync_to_async(team_file)(
        alice, None, "short.txt", "The seals are inspected weekly."
    )
    conversation = await Conversation.objects.acreate(owner=alice, model="kimi-k3")
    frames = await ask(alice, conversation, "@short.txt How often are the seals inspected?")
    assert "tools" not in kimi.streams[-1].body  # a document sent whole: nothing to search
    assert "Searching the library" not in "".join(frames)
    assert short.pk

    # With web search on, beside Kimi's tools; and a search in another conversation of
    # alice's reaches only the files its own question referred to.
    web = await Conversation.objects.acreate(owner=alice, model="kimi-k3", web_search=True)
    kimi.script.function_calls = [("search_library", '{"query": "seals weekly"}')]
    await ask(alice, web, ASKED)
    assert offered(kimi.streams[-2]) == ["web_search", "fetch", "search_library"]
    result = kimi.streams[-1].body["messages"][-1]
    assert "short.txt" not in result["content"] and "weekly" not in result["content"]


async def test_a_library_search_keeps_to_the_round_limit(kimi, alice, library):
    conversation = await Conversation.objects.acreate(owner=alice, model="kimi-k3")
    kimi.script.function_calls = [SEARCH]
    kimi.script.function_rounds = 20  # a Kimi that never stops searching
    frames = await ask(alice, conversation, ASKED)
    assert FINAL.search(frames[-1]).group(1) == "done"
    assert len(kimi.streams) == tools.MAX_ROUNDS + 1
    assert kimi.streams[-1].body["tool_choice"] == "none"
    results = [m["content"] for m in kimi.streams[-1].body["messages"] if m["role"] == "tool"]
    assert results[-1] == tools.ENOUGH and results[0].startswith("[1] “valves.txt”")
    saved = await answer(conversation)
    assert len(saved.steps) == tools.MAX_ROUNDS and saved.searches == 0
    assert [s["name"] for s in saved.sources] == ["manual.txt", "valves.txt"]  # each once


def test_a_library_call_shows_as_a_library_step():
    call = tools.ToolCall("1", "search_library", '{"query": " pump curves "}')
    step = tools.step(call)
    assert step == {"kind": "library", "text": "pump curves"}
    assert tools.step_text(step) == "Searching the library: pump curves"
