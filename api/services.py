"""Keys made and revoked, and a call's life around the relay: checked and opened before Kimi
is asked, finished (usage into the ledger, the conversation kept where asked) after."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Min
from django.utils import timezone
from django.utils.translation import gettext as _

import kimi
from accounts import admission
from accounts.models import TWO_FACTOR_REQUIRED, Usage, two_factor_missing
from api.errors import Refusal
from api.limits import admit_key, answer_cap, next_midnight, seconds_until, tokens_left
from api.models import SHOWN, ApiCall, ApiKey, digest
from conversations.models import Conversation, Message
from kimi import catalogue


def key_create(*, user: User, name: str, expires_at: datetime | None = None) -> tuple[ApiKey, str]:
    """A new key of `user`'s: the row (which keeps only the key's start and digest), and the
    key itself, to be shown once."""
    text = ApiKey.generate()
    key = ApiKey.objects.create(
        user=user, name=name, prefix=text[:SHOWN], digest=digest(text), expires_at=expires_at
    )
    return key, text


def keys_revoke(*, keys) -> int:
    """Revoke keys (a QuerySet): they stop at once; their rows stay for the ledger."""
    return keys.filter(revoked_at=None).update(revoked_at=timezone.now())


def key_user(*, text: str) -> tuple[ApiKey, User]:
    """The key a request carries and its user, who must be active. Raises Refusal."""
    key = ApiKey.objects.find(text)
    if key is None:
        raise Refusal(
            401,
            "invalid_authentication_error",
            _("Invalid API key. Create one on KimiChat's API keys page."),
            code="invalid_api_key",
        )
    if key.is_expired:
        raise Refusal(
            401,
            "invalid_authentication_error",
            _("This API key expired on %(date)s. Create a new one on KimiChat's API keys page.")
            % {"date": f"{timezone.localtime(key.expires_at):%Y-%m-%d %H:%M}"},
            code="expired_api_key",
        )
    if not key.user.is_active:
        raise Refusal(403, "permission_denied_error", _("Your account is suspended."))
    if two_factor_missing(key.user):
        raise Refusal(403, "permission_denied_error", str(TWO_FACTOR_REQUIRED))
    return key, key.user


@dataclass
class Call:
    """A call let through to Kimi, and the most its answer may write (None: Kimi's own cap)."""

    row: ApiCall
    user: User
    cap: int | None = None


def call_start(
    *,
    key_text: str,
    model: str,
    stream: bool,
    prompt_tokens: int = 0,
    max_tokens: int | None = None,
    response_id: str = "",
) -> Call:
    """Check the key, the model and the user's limits (the page's rules: suspension, daily
    tokens, answers at once and a minute, the page's answers and API calls counted together;
    then the key's own bounds), hold the call's worst case against the budgets, and open the
    call. `prompt_tokens` is the prompt's estimate, `max_tokens` the answer's cap the client
    asked for. Raises Refusal: nothing reaches Kimi then."""
    key, user = key_user(text=key_text)
    if not catalogue.is_offered(model):
        raise Refusal(
            404,
            "resource_not_found_error",
            _("The model %(model)s is not offered here. GET /v1/models lists those that are.")
            % {"model": model},
            code="model_not_found",
        )
    standing = admission.standing(user.pk)
    running = ApiCall.objects.counts(user)
    refused = admission.refusal(standing)
    if refused is not None:
        raise _refusal(refused, user, running)
    admit_key(key, model)
    left = tokens_left(key, standing, running)
    cap = answer_cap(model, prompt_tokens, max_tokens, left)
    room = catalogue.context_window(model)
    with transaction.atomic():
        row = ApiCall.objects.create(
            user=user,
            key=key,
            model=model,
            stream=stream,
            reserved_tokens=prompt_tokens + (cap or room),
            response_id=response_id,
        )
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=row.started_at)
    return Call(row, user, cap)


# The admission rule's reasons (accounts/admission.py) as the OpenAI API says them: HTTP
# status, error type (Moonshot's names) and code.
REFUSED: dict[str, tuple[int, str, str | None]] = {
    "suspended": (403, "permission_denied_error", None),
    "quota": (429, "exceeded_current_quota_error", "insufficient_quota"),
    "concurrency": (429, "rate_limit_reached_error", "concurrency_limit"),
    "rate": (429, "rate_limit_reached_error", "rate_limit"),
}


def _refusal(refused: admission.Refusal, user: User, running: dict) -> Refusal:
    """The admission rule's refusal as the API gives it, with the real wait before a retry."""
    status, kind, code = REFUSED[refused.reason]
    wait = 0
    if refused.reason == "quota":
        wait = seconds_until(next_midnight())
    elif refused.reason == "concurrency":
        wait = 1
    elif refused.reason == "rate":
        firsts = [t for t in (_page_first(user), running["first"]) if t is not None]
        wait = _minute_after(min(firsts) if firsts else None)
    return Refusal(status, kind, refused.message, code=code, retry_after=wait)


def _page_first(user: User) -> datetime | None:
    """When the first of the page's answers asked for in the last minute was (calls kept as
    conversations count once, as calls): read only when the rate refuses, to say the wait."""
    minute_ago = timezone.now() - timedelta(minutes=1)
    return (
        Message.objects.of_user(user)
        .filter(role=Message.Role.ASSISTANT, created_at__gte=minute_ago)
        .exclude(conversation__from_api=True)
        .aggregate(first=Min("created_at"))["first"]
    )


def _minute_after(first: datetime | None) -> int:
    """Seconds until the first of the last minute's calls leaves the minute: the real wait."""
    if first is None:
        return 1
    return seconds_until(first + timedelta(minutes=1))


@dataclass
class Outcome:
    """How a call ended: Kimi's status (or ours), what it counted (None where it did not say:
    then an estimate), and, to keep it, what it answered."""

    status: int
    reached_kimi: bool
    usage: kimi.Usage | None = None
    model: str = ""  # the model that answered (moonshot-v1-auto names its tier)
    estimated_completion: int = 0
    content: str = ""
    thinking: str = ""
    finish_reason: str = ""
    raw_usage: dict[str, Any] | None = None  # Kimi's usage object as it came
    chunk_id: str = ""  # a stream's id and time, for the chunk that gives its usage
    created: int = 0
    tool_calls: list[dict[str, Any]] | None = None  # the answer's, where it asked for tools


def call_finish(*, call: Call, body: dict[str, Any], outcome: Outcome) -> tuple[int, int, int]:
    """Close the call: its tokens into the call's row and the user's ledger (where Kimi was
    reached: a call cut short still spent tokens, estimated where Kimi had not counted them),
    and the exchange kept as a conversation where API_KEEP_CONVERSATIONS says so. Returns
    the tokens counted: prompt, completion, cached."""
    row = call.row
    keep = settings.API_KEEP_CONVERSATIONS
    model = outcome.model or row.model
    usage = outcome.usage
    if usage is not None:
        prompt, completion = usage.prompt_tokens or 0, usage.completion_tokens or 0
        cached = usage.cached_tokens or 0
    elif outcome.reached_kimi:
        prompt = sum(catalogue.estimate_tokens(_text(m)) for m in _messages(body))
        completion, cached = outcome.estimated_completion, 0
    else:
        prompt = completion = cached = 0
    # The call closes and its tokens reach the ledger together: whoever sees it closed sees
    # what it spent.
    with transaction.atomic():
        ApiCall.objects.filter(pk=row.pk).update(
            finished_at=timezone.now(),
            status=outcome.status,
            model=model,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cached_tokens=cached,
            transcript=_transcript(body, outcome) if row.response_id and keep else None,
        )
        if not outcome.reached_kimi:
            return 0, 0, 0
        Usage.objects.record(
            user_id=call.user.pk,
            model=model,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cached_tokens=cached,
        )
        if keep:
            conversation_keep(
                user=call.user,
                body=body,
                outcome=outcome,
                tokens={"prompt_tokens": prompt, "completion_tokens": completion},
            )
    return prompt, completion, cached


def conversation_keep(
    *, user: User, body: dict[str, Any], outcome: Outcome, tokens: dict[str, int]
) -> Conversation:
    """The call as a conversation of the user's, marked as from the API: its system messages
    as the system prompt, its turns, and Kimi's answer (or how far it came)."""
    messages = _messages(body)
    system = "\n\n".join(_text(m) for m in messages if m.get("role") == "system")
    turns = [m for m in messages if m.get("role") in ("user", "assistant") and _text(m)]
    first = next((_text(m) for m in turns if m.get("role") == "user"), "")
    done = outcome.status == 200 and outcome.finish_reason in ("stop", "length", "tool_calls")
    with transaction.atomic():
        conversation = Conversation.objects.create(
            owner=user,
            from_api=True,
            title=Conversation.title_from(first) or _("API call"),
            model=outcome.model or str(body.get("model", "")),
            system_prompt=system,
        )
        parent = None
        for turn in turns:
            parent = Message.objects.create(
                conversation=conversation,
                parent=parent,
                role=turn["role"],
                content=_text(turn),
                state=Message.State.DONE,
            )
        answer = Message.objects.create(
            conversation=conversation,
            parent=parent,
            role=Message.Role.ASSISTANT,
            content=outcome.content,
            thinking=outcome.thinking,
            state=Message.State.DONE if done else Message.State.INTERRUPTED,
            model=outcome.model or conversation.model,
            finish_reason=outcome.finish_reason,
            **tokens,
        )
        conversation.leaf = answer
        conversation.save(update_fields=["leaf"])
    return conversation


def _transcript(body: dict[str, Any], outcome: Outcome) -> list[dict[str, Any]]:
    """The exchange as chat messages, for a later Responses call that continues it: what was
    sent, then the answer (with its reasoning, which Kimi needs back with tool calls)."""
    answer: dict[str, Any] = {"role": "assistant", "content": outcome.content}
    if outcome.thinking:
        answer["reasoning_content"] = outcome.thinking
    if outcome.tool_calls:
        answer["tool_calls"] = outcome.tool_calls
    return [*_messages(body), answer]


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []


def _text(message: dict[str, Any]) -> str:
    """A message's text: its content, or the text parts of a content list (images left out)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict)]
        return " ".join(p for p in parts if isinstance(p, str))
    return ""
