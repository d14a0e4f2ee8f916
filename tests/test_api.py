"""The OpenAI-compatible API, driven by the real `openai` SDK against a running server (Daphne
on loopback, serving the real ASGI application) with the Kimi stub behind it."""

import asyncio

import openai
import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from accounts.models import TokenQuota, Usage
from api import services
from api.models import ApiCall, ApiKey
from conversations.models import Conversation, Message
from tests.helpers.api import _short_lived_connections, closed_with, sdk
from tests.helpers.chat import frames_until_final, open_chat, streamed_text
from tests.helpers.kimi_stub import Script
from tests.helpers.processes import start

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "Hello Kimi"}]
__all__ = ["_short_lived_connections"]  # autouse: the server's connections close with it


def test_a_streamed_answer_comes_chunk_by_chunk_and_is_counted(api_server, kimi, alice, alice_key):
    kimi.script = Script(tokens=["Hello", " from", " the", " stub", "."], cached_tokens=3)
    stream = sdk(api_server, alice_key).chat.completions.create(
        model="kimi-k2.6", messages=HELLO, stream=True
    )
    chunks = list(stream)
    words = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert words == ["Hello", " from", " the", " stub", "."]
    assert chunks[-1].choices[0].finish_reason == "stop"
    # Kimi's usage (in its final choice, with its own cached_tokens) passes through.
    usage = chunks[-1].choices[0].model_extra["usage"]
    assert usage["cached_tokens"] == 3
    # Sent with the company key, never the personal one.
    assert kimi.requests[-1].headers["authorization"] == "Bearer sk-test"
    assert kimi.requests[-1].body["messages"] == HELLO

    row = Usage.objects.get(user=alice, day=timezone.localdate(), model="kimi-k2.6")
    assert (row.messages, row.prompt_tokens, row.completion_tokens, row.cached_tokens) == (
        1,
        usage["prompt_tokens"],
        usage["completion_tokens"],
        3,
    )
    call = ApiCall.objects.get()
    assert (call.key.name, call.status, call.stream, call.completion_tokens) == (
        "laptop",
        200,
        True,
        usage["completion_tokens"],
    )
    assert call.finished_at is not None
    assert ApiKey.objects.get().last_used_at is not None
    assert not Conversation.objects.exists()  # not kept unless API_KEEP_CONVERSATIONS


def test_an_answer_not_streamed(api_server, kimi, alice, alice_key):
    kimi.script = Script(title="A whole answer")
    completion = sdk(api_server, alice_key).chat.completions.create(
        model="kimi-k2.6", messages=HELLO
    )
    assert completion.choices[0].message.content == "A whole answer"
    assert completion.usage is not None
    row = Usage.objects.get(user=alice)
    assert row.completion_tokens == completion.usage.completion_tokens == 3
    assert ApiCall.objects.get().stream is False


def test_models_lists_what_is_offered(api_server, kimi, alice_key, settings):
    settings.KIMI_MODELS = ["kimi-k2.6", "kimi-k2.6"]
    models = sdk(api_server, alice_key).models.list()
    assert [m.id for m in models.data] == ["kimi-k2.6", "kimi-k2.6"]
    first = models.data[0].model_extra
    assert first["supports_reasoning"] is True and first["context_length"] == 262144


def test_a_thinking_models_reasoning_passes_through(api_server, kimi, alice_key):
    stream = sdk(api_server, alice_key).chat.completions.create(
        model="kimi-k2.6", messages=HELLO, stream=True
    )
    thoughts, words = [], []
    for chunk in stream:
        if chunk.choices:
            delta = chunk.choices[0].delta
            thoughts.append(getattr(delta, "reasoning_content", None) or "")
            words.append(delta.content or "")
    assert "".join(thoughts) == "Let me think about it."
    assert "".join(words) == "Hello from the Kimi stub."
    # Kimi's own request fields go as they came: thinking off, here.
    sdk(api_server, alice_key).chat.completions.create(
        model="kimi-k2.6", messages=HELLO, extra_body={"thinking": {"type": "disabled"}}
    )
    assert kimi.requests[-1].body["thinking"] == {"type": "disabled"}


def test_over_quota_is_refused_before_kimi_is_asked(api_server, kimi, alice, alice_key):
    TokenQuota.objects.create(user=alice, daily_tokens=100)
    Usage.objects.record(
        user_id=alice.pk, model="kimi-k2.6", prompt_tokens=60, completion_tokens=40
    )
    with pytest.raises(openai.RateLimitError) as refused:
        sdk(api_server, alice_key).chat.completions.create(model="kimi-k2.6", messages=HELLO)
    assert refused.value.status_code == 429
    assert refused.value.body["type"] == "exceeded_current_quota_error"
    assert "quota of 100 tokens" in refused.value.body["message"]
    assert kimi.requests == []


def test_the_per_minute_limit_applies(api_server, kimi, alice_key, settings):
    settings.USER_MESSAGES_PER_MINUTE = 2
    client = sdk(api_server, alice_key)
    for _ in range(2):
        client.chat.completions.create(model="kimi-k2.6", messages=HELLO)
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="kimi-k2.6", messages=HELLO)
    assert refused.value.body["type"] == "rate_limit_reached_error"
    assert refused.value.response.headers["retry-after"] == "60"
    assert len(kimi.requests) == 2


def test_answers_at_once_count_the_pages_and_the_apis(api_server, kimi, alice, alice_key, settings):
    settings.USER_MAX_CONCURRENT = 2
    conversation = Conversation.objects.create(owner=alice, model="kimi-k2.6")
    Message.objects.create(
        conversation=conversation, role="assistant", state=Message.State.STREAMING
    )
    kimi.script = Script(stall_after=1)
    client = sdk(api_server, alice_key)
    stream = client.chat.completions.create(model="kimi-k2.6", messages=HELLO, stream=True)
    next(iter(stream))  # one answer on the page, one through the API: the most at once
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="kimi-k2.6", messages=HELLO)
    assert "2 answers being written" in refused.value.body["message"]
    stream.close()
    _call_left(kimi)


def _call_left(kimi) -> None:
    """The call a client left is closed to Kimi and in the ledger (its late write would
    otherwise meet the next test's database)."""
    kimi.wait_for(lambda: kimi.requests[0].closed_early)
    closed_with(499)


@pytest.mark.usefixtures("close_kimi_clients")
async def test_an_api_stream_in_flight_counts_against_the_chats_answers_at_once(
    api_server, kimi, alice, alice_key, settings
):
    settings.USER_MAX_CONCURRENT = 1
    kimi.script = Script(stall_after=1)
    client = sdk(api_server, alice_key)
    stream = await asyncio.to_thread(
        client.chat.completions.create, model="kimi-k2.6", messages=HELLO, stream=True
    )
    await asyncio.to_thread(next, iter(stream))  # the API's answer is being written
    chat = await open_chat(alice)
    await chat.send_json_to({"message": "Hello from the page", "client_id": "c1"})
    frame = await chat.receive_from(30)
    assert "composer-error" in frame and "already have 1 answers being written" in frame
    assert not await Conversation.objects.filter(owner=alice, from_api=False).aexists()
    await chat.disconnect(timeout=10)
    await asyncio.to_thread(stream.close)
    await asyncio.to_thread(_call_left, kimi)


@pytest.mark.usefixtures("close_kimi_clients")
async def test_a_chat_answer_being_written_counts_against_the_apis_answers_at_once(
    api_server, kimi, alice, alice_key, settings
):
    settings.USER_MAX_CONCURRENT = 1
    kimi.script = Script(stall_after=1)
    chat = await open_chat(alice)
    await chat.send_json_to({"message": "Hello from the page", "client_id": "c1"})
    frames = [await chat.receive_from(30)]
    while not streamed_text(frames):
        frames.append(await chat.receive_from(30))
    client = sdk(api_server, alice_key)
    with pytest.raises(openai.RateLimitError) as refused:
        await asyncio.to_thread(client.chat.completions.create, model="kimi-k2.6", messages=HELLO)
    assert refused.value.body["code"] == "concurrency_limit"
    assert "already have 1 answers being written" in refused.value.body["message"]
    assert len(kimi.requests) == 1
    await chat.send_json_to({"action": "stop"})
    await frames_until_final(chat)
    await chat.disconnect(timeout=10)


def test_a_revoked_key_stops_at_once(api_server, kimi, alice, alice_key):
    client = sdk(api_server, alice_key)
    client.chat.completions.create(model="kimi-k2.6", messages=HELLO)
    services.keys_revoke(keys=ApiKey.objects.filter(user=alice))
    with pytest.raises(openai.AuthenticationError) as refused:
        client.chat.completions.create(model="kimi-k2.6", messages=HELLO)
    assert refused.value.status_code == 401
    assert refused.value.body["type"] == "invalid_authentication_error"
    assert len(kimi.requests) == 1


def test_a_suspended_users_keys_stop_at_once(api_server, kimi, alice, alice_key):
    User.objects.filter(pk=alice.pk).update(is_active=False)
    client = sdk(api_server, alice_key)
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.chat.completions.create(model="kimi-k2.6", messages=HELLO)
    assert refused.value.body["message"] == "Your account is suspended."
    with pytest.raises(openai.PermissionDeniedError):
        client.models.list()
    assert kimi.requests == []


@pytest.mark.parametrize("key", ["", "kc-wrong", "sk-test"])
def test_a_wrong_key_is_401(api_server, kimi, key, alice_key):
    with pytest.raises(openai.AuthenticationError) as refused:
        sdk(api_server, key or "x").chat.completions.create(model="kimi-k2.6", messages=HELLO)
    assert refused.value.body["code"] == "invalid_api_key"
    assert kimi.requests == []


def test_a_malformed_body_is_400_in_the_openai_shape(api_server, kimi, alice_key):
    client = sdk(api_server, alice_key)
    with pytest.raises(openai.BadRequestError) as refused:
        client.post("/chat/completions", body={"model": "kimi-k2.6"}, cast_to=object)
    assert refused.value.body["type"] == "invalid_request_error"
    assert "messages" in refused.value.body["message"]
    raw = client.with_options(max_retries=0)._client.post(
        api_server + "/v1/chat/completions",
        content=b"{not json",
        headers={"Authorization": f"Bearer {alice_key}", "Content-Type": "application/json"},
    )
    assert raw.status_code == 400
    assert raw.json()["error"]["type"] == "invalid_request_error"
    assert kimi.requests == []


def test_a_huge_body_is_refused_by_its_size(api_server, kimi, alice_key, settings):
    settings.API_MAX_BODY_BYTES = 100_000
    huge = [{"role": "user", "content": "x" * 200_000}]
    with pytest.raises(openai.APIStatusError) as refused:
        sdk(api_server, alice_key).chat.completions.create(model="kimi-k2.6", messages=huge)
    assert refused.value.status_code == 413
    assert refused.value.body["type"] == "invalid_request_error"
    assert "image of 20 MB" in refused.value.body["message"]
    assert kimi.requests == []


def test_a_model_not_offered_is_404(api_server, kimi, alice_key):
    with pytest.raises(openai.NotFoundError) as refused:
        sdk(api_server, alice_key).chat.completions.create(model="gpt-4o", messages=HELLO)
    assert refused.value.body["code"] == "model_not_found"
    assert kimi.requests == []


def test_kimis_refusal_passes_through_and_the_company_key_problems_do_not_blame_yours(
    api_server, kimi, alice_key
):
    client = sdk(api_server, alice_key)
    kimi.script = Script(status=400, error_type="content_filter", message="high risk")
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="kimi-k2.6", messages=HELLO, stream=True)
    assert refused.value.body == {
        "message": "high risk",
        "type": "content_filter",
        "param": None,
        "code": None,
    }
    kimi.script = Script(status=401)
    with pytest.raises(openai.APIStatusError) as refused:
        client.chat.completions.create(model="kimi-k2.6", messages=HELLO)
    assert refused.value.status_code == 502
    assert "MOONSHOT_API_KEY" in refused.value.body["message"]
    assert [c.status for c in ApiCall.objects.order_by("id")] == [400, 502]
    assert not Usage.objects.exists()  # Kimi refused: nothing was spent


def test_kept_calls_become_conversations_marked_api(
    api_server, kimi, alice, alice_key, settings, client
):
    settings.API_KEEP_CONVERSATIONS = True
    messages = [{"role": "system", "content": "Be brief."}, *HELLO]
    stream = sdk(api_server, alice_key).chat.completions.create(
        model="kimi-k2.6", messages=messages, stream=True
    )
    list(stream)
    conversation = Conversation.objects.get(owner=alice)
    assert conversation.from_api and conversation.title == "Hello Kimi"
    assert conversation.system_prompt == "Be brief."
    question, answer = conversation.messages.order_by("id")
    assert question.content == "Hello Kimi"
    assert answer.content == "Hello from the Kimi stub."
    assert answer.thinking == "Let me think about it."
    assert answer.state == Message.State.DONE and answer.completion_tokens > 0
    assert conversation.leaf == answer
    client.force_login(alice)
    listed = client.get("/").content.decode()
    assert 'class="api-mark"' in listed and "Hello Kimi" in listed


def test_api_keys_off_turns_the_api_off(api_server, kimi, alice_key, settings):
    settings.API_KEYS = False
    with pytest.raises(openai.NotFoundError):
        sdk(api_server, alice_key).chat.completions.create(model="kimi-k2.6", messages=HELLO)
    assert kimi.requests == []


# The API keys page.


def test_a_key_is_shown_once_and_stored_hashed(client, alice):
    client.force_login(alice)
    page = client.post("/api-keys/", {"name": "notebook"})
    key = ApiKey.objects.get(user=alice)
    text = page.context["created"]["text"]
    assert text.startswith("kc-") and len(text) > 40
    assert text in page.content.decode()
    assert text not in (key.digest, key.prefix) and text.startswith(key.prefix)
    assert ApiKey.objects.find(text) == key
    again = client.get("/api-keys/").content.decode()
    assert text not in again and "notebook" in again and key.prefix in again
    # Made from the page (htmx), only the panel comes back: a reload of the page makes none.
    panel = client.post("/api-keys/", {"name": "second"}, headers={"HX-Request": "true"})
    assert b'id="keys-panel"' in panel.content and b"<html" not in panel.content
    assert ApiKey.objects.filter(user=alice).count() == 2


def test_only_the_owner_revokes_a_key(client, alice, bob):
    key, _text = services.key_create(user=alice, name="mine")
    client.force_login(bob)
    assert client.post(f"/api-keys/{key.pk}/revoke/").status_code == 404
    client.force_login(alice)
    assert client.post(f"/api-keys/{key.pk}/revoke/").status_code == 302
    key.refresh_from_db()
    assert key.is_revoked


def test_the_code_page_shows_the_servers_own_url(client, alice):
    client.force_login(alice)
    page = client.get("/api-keys/code/").content.decode()
    assert 'base_url="http://testserver/v1"' in page


@pytest.mark.django_db
def test_moderators_list_and_revoke_anyones_keys_and_see_their_use(client, alice, bob):
    moderator = User.objects.create_user("mod", password="password", is_staff=True)
    moderator.groups.add(Group.objects.get(name="Moderators"))
    key, _text = services.key_create(user=alice, name="alice's notebook")
    services.key_create(user=bob, name="bob's ci")
    ApiCall.objects.create(user=alice, key=key, model="kimi-k2.6", prompt_tokens=11)
    client.force_login(moderator)
    listed = client.get("/admin/api/apikey/").content.decode()
    assert "alice&#x27;s notebook" in listed and "bob&#x27;s ci" in listed
    client.post(
        "/admin/api/apikey/",
        {"action": "revoke", "_selected_action": [key.pk], "index": 0},
    )
    key.refresh_from_db()
    assert key.is_revoked
    calls = client.get(f"/admin/api/apicall/?key__id__exact={key.pk}").content.decode()
    assert "kimi-k2.6" in calls and "Listed: 1 call, 11 prompt" in calls
    usage = client.get("/admin/accounts/usage/").content.decode()
    assert "/admin/api/apicall/" in usage


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("API_KEYS", "perhaps"),
        ("API_KEEP_CONVERSATIONS", "y"),
        ("API_MAX_BODY_BYTES", "0"),
        ("API_CORS_ORIGINS", "notebook.example.com"),
    ],
)
def test_a_bad_api_setting_fails_at_start_naming_it(name, value):
    result = start(**{name: value})
    assert result.returncode != 0
    assert f"Bad value for {name}" in result.stderr


def test_kimi_stalling_mid_stream_ends_it_with_an_error_the_sdk_raises(
    api_server, kimi, alice, alice_key, settings
):
    settings.KIMI_STREAM_TIMEOUT = 0.5
    kimi.script = Script(stall_after=2)
    stream = sdk(api_server, alice_key).chat.completions.create(
        model="kimi-k2.6", messages=HELLO, stream=True
    )
    words = []
    with pytest.raises(openai.APIError, match="did not answer in time"):
        for chunk in stream:
            if chunk.choices:
                words.append(chunk.choices[0].delta.content or "")
    assert "".join(words) == "Hello from"
    call = ApiCall.objects.get()
    assert call.status == 504 and call.completion_tokens > 0  # written, so counted (estimated)
    assert Usage.objects.get(user=alice).messages == 1


def test_web_search_turned_off_cannot_be_asked_for_through_the_api(
    api_server, kimi, alice_key, settings
):
    settings.KIMI_WEB_SEARCH = False
    search = [{"type": "builtin_function", "function": {"name": "$web_search"}}]
    with pytest.raises(openai.BadRequestError, match="Web search is turned off"):
        sdk(api_server, alice_key).chat.completions.create(
            model="kimi-k2.6", messages=HELLO, extra_body={"tools": search}
        )
    assert kimi.requests == []


def test_the_api_keys_page_speaks_chinese(client, alice):
    client.force_login(alice)
    page = client.get("/api-keys/", headers={"Accept-Language": "zh-hans"}).content.decode()
    assert "新建 API 密钥" in page and "密钥名称" in page


def test_a_busy_kimi_is_not_retried_here_and_its_retry_after_reaches_the_client(
    api_server, kimi, alice_key
):
    kimi.script = Script(failures=[(429, "engine_overloaded_error")], retry_after="7")
    with pytest.raises(openai.RateLimitError) as refused:
        sdk(api_server, alice_key).chat.completions.create(
            model="kimi-k2.6", messages=HELLO, stream=True
        )
    assert refused.value.response.headers["retry-after"] == "7"
    assert refused.value.body["type"] == "engine_overloaded_error"
    assert len(kimi.requests) == 1  # the client's SDK retries, not KimiChat
    assert ApiCall.objects.get().status == 429
