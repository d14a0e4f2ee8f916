"""The chat websocket against the real ASGI application and the Kimi stub over HTTP."""

import re
import socket

import pytest
from asgiref.sync import sync_to_async

from conversations.models import Conversation
from tests.helpers.chat import (
    answer,
    connect,
    frames_until_final,
    generation_finished,
    open_chat,
    streamed_text,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_kimi_clients"),
]


@pytest.fixture
def conversation(alice):
    # Thinking off: kimi-k2.6 answers at once, as models that never thought did.
    return Conversation.objects.create(owner=alice, model="kimi-k2.6", title="Test", thinking=False)


async def test_it_streams_the_answer_then_swaps_in_the_rendered_markdown(kimi, alice, conversation):
    kimi.script.tokens = ["**Bold**", " and", " `code`"]
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Hi Kimi", "client_id": "c1", "model": "kimi-k2.6"})

    frames = await frames_until_final(chat)
    # The question and an empty streaming answer appear first, for every tab.
    assert 'data-role="user"' in frames[0] and "Hi Kimi" in frames[0]
    assert 'data-state="streaming"' in frames[0]
    assert streamed_text(frames) == "**Bold** and `code`"
    assert "<strong>Bold</strong>" in frames[-1] and "<code>code</code>" in frames[-1]
    await chat.disconnect(timeout=10)

    saved = await answer(conversation)
    assert saved.state == "done"
    assert saved.content == "**Bold** and `code`"
    assert saved.finish_reason == "stop"
    assert saved.model == "kimi-k2.6"
    assert saved.completion_tokens == 3 and saved.prompt_tokens > 0


async def test_it_reads_usage_from_a_separate_usage_chunk(kimi, alice, conversation):
    kimi.script.usage_in_choice = False
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Hi", "client_id": "c1"})
    await frames_until_final(chat)
    await chat.disconnect(timeout=10)
    saved = await answer(conversation)
    assert saved.completion_tokens == len(kimi.script.tokens)
    assert kimi.requests[0].body["stream_options"] == {"include_usage": True}


async def test_the_first_message_of_a_new_chat_creates_the_conversation(kimi, alice):
    chat = await open_chat(alice)
    await chat.send_json_to({"message": "Plan a trip to Hangzhou\nin May", "client_id": "c1"})
    frames = await frames_until_final(chat)
    await chat.disconnect(timeout=10)

    conversation = await Conversation.objects.aget(owner=alice)
    assert conversation.title == "Plan a trip to Hangzhou in May"
    assert conversation.model == "kimi-k3"  # KIMI_DEFAULT_MODEL
    # The page learns its new URL and lists the conversation in the sidebar.
    assert f'data-url="/c/{conversation.pk}/"' in frames[0]
    assert 'hx-swap-oob="afterbegin:#conversation-list"' in frames[0]
    saved = await answer(conversation)
    assert saved.state == "done"


async def test_history_and_settings_reach_kimi(kimi, alice, conversation):
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "First", "client_id": "c1"})
    await frames_until_final(chat)
    await chat.send_json_to(
        {
            "message": "Second",
            "client_id": "c2",
            "model": "kimi-k3",
            "system_prompt": "Answer in French.",
            "temperature": "0.3",
            "top_p": "0.9",
            "max_tokens": "256",
            "stop": "END\nSTOP",
        }
    )
    await frames_until_final(chat)
    await chat.disconnect(timeout=10)

    body = kimi.requests[1].body
    assert body["model"] == "kimi-k3"
    assert body["messages"] == [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "First"},
        {"role": "assistant", "content": "Hello from the Kimi stub."},
        {"role": "user", "content": "Second"},
    ]
    # kimi-k3 fixes its sampling and always thinks: the temperature and top p are kept for
    # other models but not sent, nor is a thinking field; its effort is (Max, Kimi's default).
    assert "temperature" not in body and "top_p" not in body and "thinking" not in body
    assert body["reasoning_effort"] == "max"
    assert body["max_completion_tokens"] == 256
    assert body["stop"] == ["END", "STOP"]
    # Each turn lands where the conversation's earlier turns are cached.
    key = f"kimichat-conversation-{conversation.pk}"
    assert body["prompt_cache_key"] == kimi.requests[0].body["prompt_cache_key"] == key
    saved = await Conversation.objects.aget(pk=conversation.pk)
    assert (saved.temperature, saved.top_p) == (0.3, 0.9)


async def test_invalid_settings_are_refused_before_anything_is_saved(kimi, alice, conversation):
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Hi", "client_id": "c1", "temperature": "1.5"})
    frame = await chat.receive_from(30)
    await chat.disconnect(timeout=10)
    assert 'id="composer-error"' in frame and "Temperature" in frame
    assert await conversation.messages.acount() == 0
    assert kimi.requests == []


async def test_a_replayed_send_is_taken_once(kimi, alice, conversation):
    kimi.script.delay = 0.01
    chat = await open_chat(alice, conversation)
    payload = {"message": "Once", "client_id": "same-id"}
    await chat.send_json_to(payload)
    await chat.send_json_to(payload)
    await frames_until_final(chat)
    await chat.disconnect(timeout=10)
    assert len(kimi.requests) == 1
    assert await conversation.messages.acount() == 2


async def test_tokens_are_escaped_and_model_html_never_becomes_markup(kimi, alice, conversation):
    kimi.script.tokens = ["<script>alert(1)</script>", ' <img src=x onerror="alert(2)">']
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Hi", "client_id": "c1"})
    frames = await frames_until_final(chat)
    await chat.disconnect(timeout=10)
    everything = "".join(frames)
    assert "<script>" not in everything and "<img" not in everything
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in streamed_text(frames)
    assert "&lt;img src=x onerror=" in frames[-1]


async def test_tokens_are_coalesced_into_few_frames(kimi, alice, conversation):
    kimi.script.tokens = [f" w{i}" for i in range(300)]
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Long", "client_id": "c1"})
    frames = await frames_until_final(chat)
    await chat.disconnect(timeout=10)
    token_frames = [f for f in frames if "beforeend:#msg-" in f]
    assert streamed_text(frames) == "".join(kimi.script.tokens)
    assert len(token_frames) < 100


async def test_closing_the_tab_does_not_stop_the_answer(kimi, alice, conversation):
    kimi.script.tokens = [f" w{i}" for i in range(20)]
    kimi.script.delay = 0.01
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Hi", "client_id": "c1"})
    await chat.receive_from(30)  # the question is saved and the answer started
    await chat.disconnect(timeout=10)

    await generation_finished(conversation)
    saved = await answer(conversation)
    assert saved.state == "done"
    assert saved.content == "".join(kimi.script.tokens)
    assert not kimi.requests[0].closed_early


async def test_stop_closes_the_upstream_stream_and_keeps_the_partial_answer(
    kimi, alice, conversation
):
    kimi.script.tokens = ["Partial", " answer"] + [" more"] * 100
    kimi.script.stall_after = 2
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Hi", "client_id": "c1"})
    frames = []
    while "Partial answer" not in streamed_text(frames):
        frames.append(await chat.receive_from(30))
    await chat.send_json_to({"action": "stop"})
    frames = await frames_until_final(chat)
    await chat.disconnect(timeout=10)

    assert 'data-state="stopped"' in frames[-1]
    await sync_to_async(kimi.wait_for)(lambda: kimi.requests[0].closed_early)
    saved = await answer(conversation)
    assert saved.state == "stopped"
    assert saved.content == "Partial answer"


async def test_two_tabs_on_one_conversation_see_the_same_stream(kimi, alice, conversation):
    kimi.script.delay = 0.005
    first, second = await open_chat(alice, conversation), await open_chat(alice, conversation)
    await first.send_json_to({"message": "Hi", "client_id": "c1"})
    frames_first = await frames_until_final(first)
    frames_second = await frames_until_final(second)
    await first.disconnect(timeout=10)
    await second.disconnect(timeout=10)
    assert (
        streamed_text(frames_second) == streamed_text(frames_first) == "Hello from the Kimi stub."
    )
    assert "Hi" in frames_second[0]


async def test_a_reconnecting_page_gets_exactly_the_missing_text(kimi, alice, conversation):
    kimi.script.tokens = [f" w{i}" for i in range(40)]
    kimi.script.delay = 0.01
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Hi", "client_id": "c1"})
    frames = [await chat.receive_from(30)]
    while len(streamed_text(frames)) < 20:
        frames.append(await chat.receive_from(30))
    shown = streamed_text(frames)
    await chat.disconnect(timeout=10)

    message_id = (await answer(conversation)).pk
    again = await open_chat(alice, conversation)
    await again.send_json_to({"action": "sync", "streaming": {str(message_id): len(shown)}})
    rest = await frames_until_final(again)
    await again.disconnect(timeout=10)
    assert shown + streamed_text(rest) == "".join(kimi.script.tokens)
    assert len(kimi.requests) == 1


async def test_a_page_that_missed_the_end_gets_the_finished_answer(kimi, alice, conversation):
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Hi", "client_id": "c1"})
    await frames_until_final(chat)
    message_id = (await answer(conversation)).pk
    await chat.send_json_to({"action": "sync", "streaming": {str(message_id): 3}})
    frame = await chat.receive_from(30)
    await chat.disconnect(timeout=10)
    assert 'data-state="done"' in frame and 'hx-swap-oob="true"' in frame


async def test_a_page_loaded_before_a_message_came_is_sent_the_thread_anew(
    kimi, alice, conversation
):
    """A second tab loaded just before the first sent (or whose socket was away when a
    message came) shows the new question and the answer, streaming on from where it is."""
    kimi.script.tokens = ["Partial", " answer"] + [" more"] * 100
    kimi.script.stall_after = 2
    first = await open_chat(alice, conversation)
    await first.send_json_to({"message": "Hi", "client_id": "c1"})
    frames = []
    while "Partial answer" not in streamed_text(frames):
        frames.append(await first.receive_from(30))
    answer_row = await answer(conversation)

    late = await open_chat(alice, conversation)  # its page showed no message yet
    await late.send_json_to({"action": "sync", "streaming": {}, "last": 0})
    thread = await late.receive_from(30)
    assert 'id="messages"' in thread and "Hi" in thread and f'id="msg-{answer_row.pk}"' in thread
    caught_up = []
    while "Partial answer" not in re.sub(r"<[^>]+>", "", thread) + streamed_text(caught_up):
        caught_up.append(await late.receive_from(30))

    # A page that shows the newest message is sent nothing anew.
    await late.send_json_to({"action": "sync", "streaming": {}, "last": answer_row.pk})
    await first.send_json_to({"action": "stop"})
    rest = await frames_until_final(late)
    assert not any('id="messages"' in frame for frame in rest)
    await frames_until_final(first)
    await first.disconnect(timeout=10)
    await late.disconnect(timeout=10)


@pytest.mark.parametrize(
    ("status", "error_type", "code", "expected"),
    [
        (401, None, "auth", "rejected the API key"),
        (403, None, "quota", "no balance or quota"),
        (403, "permission_denied_error", "permission", "may not use this"),
        (429, "exceeded_current_quota_error", "quota", "no balance or quota"),
        (404, None, "model", "does not know this model"),
        (429, None, "rate_limit", "busy or the rate limit"),
        (400, "content_filter", "content_filter", "considered high risk"),
        (400, None, "context_length", "too long for this model"),
        (500, None, "server", "internal error"),
    ],
)
async def test_kimi_errors_end_in_a_readable_error_with_retry(
    kimi, alice, conversation, status, error_type, code, expected
):
    kimi.script.status, kimi.script.error_type = status, error_type
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Hi", "client_id": "c1"})
    frames = await frames_until_final(chat)
    await chat.disconnect(timeout=10)
    assert 'data-state="error"' in frames[-1] and expected in frames[-1]
    assert ">Retry</button>" in frames[-1]
    saved = await answer(conversation)
    assert saved.state == "error" and saved.error_code == code
    assert "sk-test" not in frames[-1]


async def test_a_refused_request_shows_kimis_reason(kimi, alice, conversation):
    kimi.script.status, kimi.script.message = 400, "Invalid request: stop must be a list"
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Hi", "client_id": "c1"})
    frames = await frames_until_final(chat)
    await chat.disconnect(timeout=10)
    assert "Kimi refused the request. (Invalid request: stop must be a list)" in frames[-1]


async def test_errors_are_shown_in_the_language_of_the_page(kimi, alice, conversation):
    kimi.script.status = 401
    chat = await connect(alice, f"/ws/conversations/{conversation.pk}/", language="zh-CN,zh;q=0.9")
    await chat.connect(30)
    await chat.send_json_to({"message": "你好", "client_id": "c1"})
    frames = await frames_until_final(chat)
    await chat.disconnect(timeout=10)
    assert "Kimi 拒绝了 API 密钥" in frames[-1] and ">重试</button>" in frames[-1]


@pytest.mark.parametrize(
    "failure", [(429, "engine_overloaded_error"), (429, "rate_limit_reached_error"), (502, None)]
)
async def test_a_busy_kimi_is_retried_with_backoff(kimi, alice, conversation, settings, failure):
    settings.KIMI_MAX_RETRIES = 2
    kimi.script.failures = [failure, failure]
    kimi.script.message = "Your account reached max request, please try again after 0.01 seconds"
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Hi", "client_id": "c1"})
    frames = await frames_until_final(chat)
    await chat.disconnect(timeout=10)
    assert "Trying again" in "".join(frames) and "attempt 2 of 3" in "".join(frames)
    assert 'data-state="done"' in frames[-1]
    assert streamed_text(frames) == "Hello from the Kimi stub."
    assert len(kimi.requests) == 3


async def test_retries_give_up_and_say_so(kimi, alice, conversation, settings):
    settings.KIMI_MAX_RETRIES = 1
    kimi.script.failures = [(429, "engine_overloaded_error")] * 2
    kimi.script.retry_after = "0"
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Hi", "client_id": "c1"})
    frames = await frames_until_final(chat)
    await chat.disconnect(timeout=10)
    assert "busy or the rate limit was reached, also after retrying" in frames[-1]
    assert len(kimi.requests) == 2


async def test_an_exhausted_balance_is_never_retried(kimi, alice, conversation, settings):
    settings.KIMI_MAX_RETRIES = 2
    kimi.script.status, kimi.script.error_type = 429, "exceeded_current_quota_error"
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Hi", "client_id": "c1"})
    frames = await frames_until_final(chat)
    await chat.disconnect(timeout=10)
    assert "no balance or quota" in frames[-1]
    assert len(kimi.requests) == 1


async def test_an_unreachable_kimi_is_said_plainly(kimi, alice, conversation, settings):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        settings.MOONSHOT_BASE_URL = f"http://127.0.0.1:{closed.getsockname()[1]}/v1"
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Hi", "client_id": "c1"})
    frames = await frames_until_final(chat)
    await chat.disconnect(timeout=10)
    assert "could not reach Kimi" in frames[-1] and ">Retry</button>" in frames[-1]
    assert (await answer(conversation)).error_code == "connection"


async def test_a_bad_key_is_never_shown(kimi, alice, conversation, settings):
    settings.MOONSHOT_API_KEY = "sk-wrong-secret"
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Hi", "client_id": "c1"})
    frames = await frames_until_final(chat)
    await chat.disconnect(timeout=10)
    assert "rejected the API key" in frames[-1]
    assert "sk-wrong-secret" not in "".join(frames)


async def test_a_stalled_stream_fails_and_keeps_the_text_so_far(
    kimi, alice, conversation, settings
):
    settings.KIMI_STREAM_TIMEOUT = 1.5  # long enough for a busy machine to start
    kimi.script.stall_after = 2
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Hi", "client_id": "c1"})
    frames = await frames_until_final(chat)
    await chat.disconnect(timeout=10)
    assert "did not answer in time" in frames[-1]
    saved = await answer(conversation)
    assert saved.state == "error" and saved.content == "Hello from"


async def test_a_stream_that_ends_without_finish_reason_is_shown_as_cut_off(
    kimi, alice, conversation
):
    kimi.script.finish = False
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Hi", "client_id": "c1"})
    frames = await frames_until_final(chat)
    await chat.disconnect(timeout=10)
    assert "The answer is incomplete" in frames[-1] and ">Retry</button>" in frames[-1]
    saved = await answer(conversation)
    assert saved.state == "error" and saved.error_code == "cut_off"
    assert saved.content == "Hello from the Kimi stub."


async def test_without_a_key_sending_ends_in_a_readable_error(kimi, alice, conversation, settings):
    settings.MOONSHOT_API_KEY = ""
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "Hi", "client_id": "c1"})
    frames = await frames_until_final(chat)
    await chat.disconnect(timeout=10)
    assert "No Kimi API key is configured" in frames[-1]
    assert kimi.requests == []


async def test_a_second_message_waits_for_the_running_answer(kimi, alice, conversation):
    kimi.script.stall_after = 1
    chat = await open_chat(alice, conversation)
    await chat.send_json_to({"message": "One", "client_id": "c1"})
    await chat.receive_from(30)
    await chat.send_json_to({"message": "Two", "client_id": "c2"})
    frame = await chat.receive_from(30)
    while "composer-error" not in frame:
        frame = await chat.receive_from(30)
    assert "still answering" in frame
    await chat.send_json_to({"action": "stop"})
    await frames_until_final(chat)
    await chat.disconnect(timeout=10)


async def test_another_users_conversation_is_refused(kimi, bob, conversation):
    chat = await connect(bob, f"/ws/conversations/{conversation.pk}/")
    connected, code = await chat.connect(30)
    assert not connected and code == 4404


async def test_anonymous_sockets_are_refused(conversation):
    chat = await connect(None, f"/ws/conversations/{conversation.pk}/")
    connected, code = await chat.connect(30)
    assert not connected and code == 4401


async def test_sockets_from_another_origin_are_refused(alice, conversation):
    chat = await connect(
        alice, f"/ws/conversations/{conversation.pk}/", origin=(b"origin", b"http://evil.example")
    )
    connected, _ = await chat.connect(30)
    assert not connected


@pytest.mark.parametrize(
    "origin",
    [
        "http://localhost:1234",  # another port of the same host
        "https://localhost",  # another scheme
        "http://127.0.0.1:9999",  # an allowed host, but not the one connected to
        "null",  # a sandboxed page or a file
    ],
)
async def test_the_origin_must_be_the_page_of_this_very_site(alice, conversation, origin):
    chat = await connect(
        alice, f"/ws/conversations/{conversation.pk}/", origin=(b"origin", origin.encode())
    )
    connected, _ = await chat.connect(30)
    assert not connected


async def test_a_trusted_origin_and_a_page_behind_a_tls_proxy_may_connect(
    alice, conversation, settings
):
    settings.CSRF_TRUSTED_ORIGINS = ["https://*.example.com"]
    path = f"/ws/conversations/{conversation.pk}/"
    chat = await connect(alice, path, origin=(b"origin", b"https://chat.example.com"))
    connected, _ = await chat.connect(30)
    assert connected
    await chat.disconnect(timeout=10)

    # Behind a proxy that terminates TLS and says so, the page is https://.
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    proxied = await connect(alice, path, origin=(b"origin", b"https://localhost"))
    proxied.scope["headers"].append((b"x-forwarded-proto", b"https"))
    connected, _ = await proxied.connect(30)
    assert connected
    await proxied.disconnect(timeout=10)
