"""What real client code meets at /v1 beyond a plain answer: the usage at a stream's end in
OpenAI's shape, a call the client abandons, malformed bodies, OpenAI's errors on every path,
CORS, requests bounded before they reach Kimi, and keys an organisation governs."""

from datetime import timedelta

import httpx2 as httpx
import openai
import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from accounts.models import TokenQuota, Usage
from api import services
from api.models import ApiCall, ApiKey
from tests.helpers.api import _short_lived_connections, abandon, closed_with, sdk
from tests.helpers.kimi_stub import Script

pytestmark = pytest.mark.django_db(transaction=True)
__all__ = ["_short_lived_connections"]  # autouse: the server's connections close with it

HELLO = [{"role": "user", "content": "Hello Kimi"}]


def raw(api_server: str, key: str, method: str, path: str, **kwargs) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}", **kwargs.pop("headers", {})}
    return httpx.request(method, api_server + path, headers=headers, timeout=10, **kwargs)


def test_the_usage_comes_last_in_openais_shape_when_asked(api_server, kimi, alice, alice_key):
    kimi.script = Script(cached_tokens=3)
    chunks = list(
        sdk(api_server, alice_key).chat.completions.create(
            model="kimi-k3",
            messages=HELLO,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert all(c.usage is None for c in chunks[:-1])
    row = Usage.objects.get(user=alice)
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (
        row.prompt_tokens,
        row.completion_tokens,
    )
    assert last.usage.total_tokens == row.prompt_tokens + row.completion_tokens > 0
    assert last.usage.prompt_tokens_details.cached_tokens == 3
    assert "stream_options" not in kimi.requests[-1].body
    # Not asked: no chunk without choices.
    plain = list(
        sdk(api_server, alice_key).chat.completions.create(
            model="kimi-k3", messages=HELLO, stream=True
        )
    )
    assert all(c.choices for c in plain)


def test_an_answer_not_streamed_gives_openais_usage_details(api_server, kimi, alice_key):
    kimi.script = Script(cached_tokens=2)
    completion = sdk(api_server, alice_key).chat.completions.create(
        model="kimi-k2.6", messages=HELLO
    )
    assert completion.usage.prompt_tokens_details.cached_tokens == 2


@pytest.mark.parametrize("stream", [False], ids=["whole"])
def test_an_abandoned_call_is_closed_and_counted(
    api_server, kimi, alice, alice_key, settings, stream
):
    settings.USER_MAX_CONCURRENT = 1
    kimi.script = Script(stall_after=0)
    body = {"model": "kimi-k2.6", "messages": HELLO, "stream": stream}
    abandon(api_server, alice_key, "/v1/chat/completions", body, kimi)
    kimi.wait_for(lambda: kimi.requests[0].closed_early)
    call = closed_with(499)
    assert call.finished_at is not None and call.prompt_tokens > 0
    assert Usage.objects.get(user=alice).prompt_tokens == call.prompt_tokens
    # Its slot is free: the next call is answered, not refused with 429.
    kimi.script = Script()
    answer = sdk(api_server, alice_key).chat.completions.create(model="kimi-k2.6", messages=HELLO)
    assert answer.choices[0].message.content == "A stub title"


@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "kimi-k2.6", "messages": [{"role": "user", "content": NaN}]}',
        b'{"model": "kimi-k2.6", "messages": [{"role": "user", "content": "\\ud800"}]}',
        b'{"model": "kimi-k2.6", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
    ids=["nan", "lone-surrogate", "deep-brackets"],
)
def test_a_malformed_body_is_400_never_500_and_opens_no_call(api_server, kimi, alice_key, body):
    answer = raw(
        api_server,
        alice_key,
        "POST",
        "/v1/chat/completions",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["type"] == "invalid_request_error"
    assert not ApiCall.objects.exists() and kimi.requests == []


def test_every_v1_path_answers_in_openais_error_shape(api_server, kimi, alice_key):
    for method, path, status in [
        ("GET", "/v1/assistants", 404),
        ("POST", "/v1/embeddings", 404),
        ("GET", "/v1", 404),
        ("GET", "/v1/chat/completions", 405),
        ("POST", "/v1/models", 405),
    ]:
        answer = raw(api_server, alice_key, method, path)
        assert answer.status_code == status, path
        assert answer.headers["content-type"] == "application/json", path
        assert answer.json()["error"]["message"], path
    client = sdk(api_server, alice_key)
    model = client.models.retrieve("kimi-k2.6")
    assert model.id == "kimi-k2.6" and model.model_extra["context_length"] == 262144
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


def test_our_own_per_minute_limit_says_the_real_wait(api_server, kimi, alice, alice_key, settings):
    settings.USER_MESSAGES_PER_MINUTE = 1
    ApiCall.objects.create(user=alice, model="kimi-k2.6", finished_at=timezone.now())
    ApiCall.objects.update(started_at=timezone.now() - timedelta(seconds=50))
    with pytest.raises(openai.RateLimitError) as refused:
        sdk(api_server, alice_key).chat.completions.create(model="kimi-k2.6", messages=HELLO)
    assert 8 <= int(refused.value.response.headers["retry-after"]) <= 11


def test_browser_apps_on_the_allowed_origins_may_call(api_server, kimi, alice_key, settings):
    settings.API_CORS_ORIGINS = ["https://notebook.example"]
    asked = {
        "Origin": "https://notebook.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os",
    }
    preflight = httpx.options(api_server + "/v1/chat/completions", headers=asked)
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://notebook.example"
    assert "x-stainless-os" in preflight.headers["access-control-allow-headers"]
    answer = raw(
        api_server,
        alice_key,
        "POST",
        "/v1/chat/completions",
        json={"model": "kimi-k2.6", "messages": HELLO},
        headers={"Origin": "https://notebook.example"},
    )
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "https://notebook.example"
    other = httpx.options(
        api_server + "/v1/chat/completions", headers={**asked, "Origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in other.headers


def test_what_a_user_may_ask_is_bounded_before_kimi(api_server, kimi, alice_key):
    client = sdk(api_server, alice_key)
    client.chat.completions.create(
        model="kimi-k2.6",
        messages=HELLO,
        max_tokens=10**12,
        extra_body={"file_ids": ["file-of-someone-else"], "made_up": 1},
    )
    sent = kimi.requests[-1].body
    assert 0 < sent["max_tokens"] <= 262144
    assert "file_ids" not in sent and "made_up" not in sent
    with pytest.raises(openai.BadRequestError, match="n=1"):
        client.chat.completions.create(model="kimi-k2.6", messages=HELLO, n=50)
    image = {"type": "image_url", "image_url": {"url": "ms://file-of-someone-else"}}
    with pytest.raises(openai.BadRequestError, match="data: URLs"):
        client.chat.completions.create(
            model="kimi-k3", messages=[{"role": "user", "content": [image]}]
        )
    assert len(kimi.requests) == 1


def test_a_call_cannot_overshoot_the_quota(api_server, kimi, alice, alice_key):
    TokenQuota.objects.create(user=alice, daily_tokens=1000)
    client = sdk(api_server, alice_key)
    client.chat.completions.create(model="kimi-k2.6", messages=HELLO, max_tokens=5000)
    assert kimi.requests[-1].body["max_tokens"] < 1000
    # A stream running holds its worst case: a second call finds the quota spoken for.
    kimi.script = Script(stall_after=1)
    stream = client.chat.completions.create(model="kimi-k2.6", messages=HELLO, stream=True)
    next(iter(stream))
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="kimi-k2.6", messages=HELLO)
    assert refused.value.body["code"] == "insufficient_quota"
    stream.close()
    closed_with(499)


def test_a_key_governed_by_expiry_models_budget_and_rate(api_server, kimi, alice, alice_key):
    key = ApiKey.objects.get(user=alice)
    client = sdk(api_server, alice_key)
    ApiKey.objects.update(allowed_models=["kimi-k3"], requests_per_minute=2, token_budget=10**6)
    assert [m.id for m in client.models.list().data] == ["kimi-k3"]
    with pytest.raises(openai.PermissionDeniedError, match=r"may not use kimi-k2\.6"):
        client.chat.completions.create(model="kimi-k2.6", messages=HELLO)
    client.chat.completions.create(model="kimi-k3", messages=HELLO)
    told = raw(api_server, alice_key, "GET", "/v1/key").json()
    spent = ApiCall.objects.get().prompt_tokens + ApiCall.objects.get().completion_tokens
    assert told["models"] == ["kimi-k3"] and told["requests_per_minute"] == 2
    assert told["budget"]["tokens"] == 10**6 and told["budget"]["spent"] == spent > 0
    client.chat.completions.create(model="kimi-k3", messages=HELLO)
    with pytest.raises(openai.RateLimitError, match="2 requests a minute") as refused:
        client.chat.completions.create(model="kimi-k3", messages=HELLO)
    assert 1 <= int(refused.value.response.headers["retry-after"]) <= 60
    ApiKey.objects.update(requests_per_minute=0, token_budget=spent)
    with pytest.raises(openai.RateLimitError, match="spent its budget"):
        client.chat.completions.create(model="kimi-k3", messages=HELLO)
    ApiKey.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    with pytest.raises(openai.AuthenticationError, match="expired"):
        client.models.list()
    assert len(kimi.requests) == 2
    assert key.pk == ApiKey.objects.get().pk


def test_the_keys_page_shows_each_keys_tokens_this_month_and_its_expiry(client, alice):
    key, _text = services.key_create(user=alice, name="notebook")
    ApiCall.objects.create(
        user=alice, key=key, model="kimi-k3", prompt_tokens=1200, completion_tokens=34
    )
    client.force_login(alice)
    page = client.get("/api-keys/").content.decode()
    assert "1234 tokens this month" in page
    made = client.post("/api-keys/", {"name": "ci", "expires_at": "2099-01-31"})
    assert made.status_code == 200
    assert ApiKey.objects.get(name="ci").expires_at.year == 2099
    past = client.post("/api-keys/", {"name": "old", "expires_at": "2001-01-01"})
    assert "The expiry must be in the future." in past.content.decode()
    chinese = client.get("/api-keys/", headers={"Accept-Language": "zh-hans"}).content.decode()
    assert "本月 1234 个 token" in chinese


@pytest.mark.django_db
def test_moderators_bound_any_key_in_the_admin(client, alice):
    moderator = User.objects.create_user("mod", password="password", is_staff=True)
    moderator.groups.add(Group.objects.get(name="Moderators"))
    key, _text = services.key_create(user=alice, name="alice's notebook")
    client.force_login(moderator)
    form = client.get(f"/admin/api/apikey/{key.pk}/change/").content.decode()
    assert 'name="token_budget"' in form and 'name="allowed_models"' in form
    client.post(
        f"/admin/api/apikey/{key.pk}/change/",
        {
            "expires_at_0": "2099-01-01",
            "expires_at_1": "00:00:00",
            "allowed_models": ["kimi-k3"],
            "token_budget": "5000",
            "budget_period": "month",
            "requests_per_minute": "3",
        },
    )
    key.refresh_from_db()
    assert (key.allowed_models, key.token_budget, key.budget_period, key.requests_per_minute) == (
        ["kimi-k3"],
        5000,
        "month",
        3,
    )
    assert key.expires_at.year == 2099 and key.name == "alice's notebook"
