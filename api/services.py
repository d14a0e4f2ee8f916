"""Keys made and revoked, and a call's life around the relay: checked and opened before Kimi
is asked, finished (usage into the ledger, the conversation kept where asked) after."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import TWO_FACTOR_REQUIRED, Usage, two_factor_missing
from api.models import SHOWN, ApiCall, ApiKey, digest
from conversations.models import Conversation, Message, live_answers
from kimichat import catalogue, kimi


class Refusal(Exception):
    """A call refused before Kimi is asked, as the OpenAI API refuses one: its HTTP status,
    error type (Moonshot's names, kimi-api.md §5) and message."""

    def __init__(
        self, status: int, kind: str, message: str, code: str | None = None, retry_after: int = 0
    ) -> None:
        super().__init__(message)
        self.status, self.kind, self.message, self.code = status, kind, message, code
        self.retry_after = retry_after


def key_create(*, user: User, name: str) -> tuple[ApiKey, str]:
    """A new key of `user`'s: the row (which keeps only the key's start and digest), and the
    key itself, to be shown once."""
    text = ApiKey.generate()
    key = ApiKey.objects.create(user=user, name=name, prefix=text[:SHOWN], digest=digest(text))
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
    if not key.user.is_active:
        raise Refusal(403, "permission_denied_error", _("Your account is suspended."))
    if two_factor_missing(key.user):
        raise Refusal(403, "permission_denied_error", str(TWO_FACTOR_REQUIRED))
    return key, key.user


@dataclass
class Call:
    """A call let through to Kimi."""

    row: ApiCall
    user: User


def call_start(*, key_text: str, model: str, stream: bool) -> Call:
    """Check the key, the model and the user's limits (the page's rules: suspension, daily
    tokens, answers at once and a minute, the page's answers and API calls counted together),
    then open the call. Raises Refusal: nothing reaches Kimi then."""
    key, user = key_user(text=key_text)
    if not catalogue.is_offered(model):
        raise Refusal(
            404,
            "resource_not_found_error",
            _("The model %(model)s is not offered here. GET /v1/models lists those that are.")
            % {"model": model},
            code="model_not_found",
        )
    standing = Usage.objects.standing(user)
    if not standing.active:
        raise Refusal(403, "permission_denied_error", _("Your account is suspended."))
    if standing.over_quota:
        raise Refusal(
            429,
            "exceeded_current_quota_error",
            _(
                "You have used today's quota of %(quota)s tokens. It renews at midnight "
                "(%(zone)s); an administrator can raise it."
            )
            % {"quota": f"{standing.quota:,}", "zone": settings.TIME_ZONE},
            code="insufficient_quota",
        )
    live, recent = _running(user)
    if live >= settings.USER_MAX_CONCURRENT:
        raise Refusal(
            429,
            "rate_limit_reached_error",
            _(
                "You already have %(count)s answers being written, the most at once. "
                "Wait for one to finish."
            )
            % {"count": settings.USER_MAX_CONCURRENT},
            code="concurrency_limit",
            retry_after=1,
        )
    if recent >= settings.USER_MESSAGES_PER_MINUTE:
        raise Refusal(
            429,
            "rate_limit_reached_error",
            _(
                "You have asked for %(count)s answers in the last minute, the most allowed. "
                "Please wait a moment and send again."
            )
            % {"count": settings.USER_MESSAGES_PER_MINUTE},
            code="rate_limit",
            retry_after=60,
        )
    with transaction.atomic():
        row = ApiCall.objects.create(user=user, key=key, model=model, stream=stream)
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=row.started_at)
    return Call(row, user)


def _running(user: User) -> tuple[int, int]:
    """Answers being written now, and answers asked for in the last minute: the page's and
    the API's together (two queries). Calls kept as conversations count once, as calls."""
    minute_ago = timezone.now() - timedelta(minutes=1)
    live = live_answers()
    recent = Q(role=Message.Role.ASSISTANT, created_at__gte=minute_ago)
    page = (
        Message.objects.of_user(user)
        .filter(live | recent)
        .exclude(conversation__from_api=True)
        .aggregate(live=Count("id", filter=live), recent=Count("id", filter=recent))
    )
    calls = ApiCall.objects.counts(user)
    return page["live"] + calls["live"], page["recent"] + calls["recent"]


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
    reasoning: str = ""
    finish_reason: str = ""


def call_finish(*, call: Call, body: dict[str, Any], outcome: Outcome) -> None:
    """Close the call: its tokens into the call's row and the user's ledger (where Kimi was
    reached: a call cut short still spent tokens, estimated where Kimi had not counted them),
    and the exchange kept as a conversation where API_KEEP_CONVERSATIONS says so."""
    row = call.row
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
    ApiCall.objects.filter(pk=row.pk).update(
        finished_at=timezone.now(),
        status=outcome.status,
        model=model,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=cached,
    )
    if not outcome.reached_kimi:
        return
    Usage.objects.record(
        user_id=call.user.pk,
        model=model,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=cached,
    )
    if settings.API_KEEP_CONVERSATIONS:
        conversation_keep(
            user=call.user,
            body=body,
            outcome=outcome,
            tokens={"prompt_tokens": prompt, "completion_tokens": completion},
        )


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
            reasoning=outcome.reasoning,
            state=Message.State.DONE if done else Message.State.INTERRUPTED,
            model=outcome.model or conversation.model,
            finish_reason=outcome.finish_reason,
            **tokens,
        )
        conversation.leaf = answer
        conversation.save(update_fields=["leaf"])
    return conversation


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
