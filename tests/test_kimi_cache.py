"""Cache-friendly prompts: every turn resends the earlier ones byte for byte, so Kimi serves
them from its prefix cache (the stub caches as Kimi does); passages picked for one question
never go ahead of the history; cached tokens are read wherever Kimi puts them."""

import itertools

import pytest
from django.utils import timezone

import kimi as kimi_client
from accounts.models import Usage
from conversations.models import Conversation
from tests.helpers import documents
from tests.helpers.chat import answer, frames_until_final, open_chat
from tests.helpers.uploads import uploaded
from tests.test_retrieval import FACT, filler

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_kimi_clients"),
]


async def test_each_turn_is_served_from_kimis_cache_and_counted(kimi, alice):
    conversation = await Conversation.objects.acreate(
        owner=alice, model="kimi-k3", system_prompt="Be brief."
    )
    chat = await open_chat(alice, conversation)
    for n in range(4):
        await chat.send_json_to({"message": f"Question {n}", "client_id": f"c{n}"})
        await frames_until_final(chat)
    await chat.disconnect(timeout=10)
    usage = [r.usage for r in kimi.streams]
    for before, now in itertools.pairwise(usage):
        # All that Kimi had seen of the conversation came from its cache.
        assert now["cached_tokens"] >= 0.98 * before["prompt_tokens"]
    # Each request in the earlier one's place: its start is the earlier request, whole.
    for before, now in itertools.pairwise(kimi.streams):
        assert now.body["messages"][: len(before.body["messages"])] == before.body["messages"]
        assert now.body["prompt_cache_key"] == before.body["prompt_cache_key"]
    saved = await answer(conversation)
    assert saved.cached_tokens == usage[-1]["cached_tokens"]
    row = await Usage.objects.aget(user=alice, day=timezone.localdate())
    assert row.cached_tokens == sum(u["cached_tokens"] for u in usage)


async def test_passages_picked_per_question_go_after_the_history(kimi, alice, settings):
    settings.KIMI_CONTEXT_WINDOWS = {"kimi-k2.6": 8192}
    pages = [FACT if n == 217 else filler(n) for n in range(1, 301)]
    await uploaded(alice, "manual.pdf", documents.pdf_bytes(pages))
    conversation = await Conversation.objects.acreate(owner=alice, model="kimi-k2.6")
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "@manual.pdf Zephyr valve pressure?", "client_id": "a"})
    await frames_until_final(chat)
    await chat.send_json_to({"message": "And the relief valve?", "client_id": "b"})
    await frames_until_final(chat)
    await chat.disconnect(timeout=10)
    first, second = (r.body["messages"] for r in kimi.streams[-2:])
    roles = [m["role"] for m in second]
    assert roles == ["user", "assistant", "system", "user"]
    # The earlier turn went first, as it was sent: what was cached stays usable.
    assert second[0] == first[-1]


def test_cached_tokens_are_read_where_kimi_or_openai_put_them():
    assert kimi_client.usage_of({"prompt_tokens": 9, "cached_tokens": 4}).cached_tokens == 4
    details = {"prompt_tokens": 9, "prompt_tokens_details": {"cached_tokens": 5}}
    assert kimi_client.usage_of(details).cached_tokens == 5
    chunk = {"choices": [{"delta": {}, "usage": {"prompt_tokens": 9, "cached_tokens": 6}}]}
    usage = kimi_client.chunk_usage(chunk)
    assert usage is not None and usage.cached_tokens == 6
