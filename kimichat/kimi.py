"""The one place that talks to the Kimi API: the client, opening a stream (with retries),
titles, and what Kimi's errors mean. What is known of each model is in catalogue.py."""

import asyncio
import logging
import random
import re
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import openai
from django.conf import settings
from django.utils.translation import gettext_lazy as _
from openai import AsyncStream
from openai.types.chat import ChatCompletionChunk

log = logging.getLogger(__name__)

# One client per event loop: the HTTP connection pool belongs to the loop that opened it.
_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict]" = weakref.WeakKeyDictionary()


class NoKeyConfigured(Exception):
    pass


def is_configured() -> bool:
    return bool(settings.MOONSHOT_API_KEY)


def client() -> openai.AsyncOpenAI:
    if not is_configured():
        raise NoKeyConfigured
    per_loop = _clients.setdefault(asyncio.get_running_loop(), {})
    key = (settings.MOONSHOT_API_KEY, settings.MOONSHOT_BASE_URL, settings.KIMI_STREAM_TIMEOUT)
    if key not in per_loop:
        per_loop[key] = openai.AsyncOpenAI(
            api_key=settings.MOONSHOT_API_KEY,
            base_url=settings.MOONSHOT_BASE_URL,
            # The read timeout bounds the silence between two streamed chunks.
            timeout=openai.Timeout(
                settings.KIMI_STREAM_TIMEOUT, connect=settings.KIMI_CONNECT_TIMEOUT
            ),
            # Retries are ours (stream_open): a 429 for an empty balance must not be retried.
            max_retries=0,
            # aiohttp costs noticeably less CPU per streamed chunk than httpx's transport.
            http_client=openai.DefaultAioHttpClient(),
        )
    return per_loop[key]


async def aclose() -> None:
    """Close this event loop's clients (their connection pools die with the loop)."""
    for c in _clients.pop(asyncio.get_running_loop(), {}).values():
        await c.close()


async def stream_open(
    *,
    model: str,
    messages: list[dict],
    params: dict[str, Any],
    on_retry: Callable[[float, int], Awaitable[None]] | None = None,
) -> AsyncStream[ChatCompletionChunk]:
    """Start a streamed completion, retrying what Kimi says is worth retrying (busy, 5xx):
    `on_retry(seconds, attempt)` is told before each wait. Raises what cannot be retried."""
    attempt = 0
    while True:
        try:
            # The conversation's sampling parameters go as they are: no overload takes **params.
            return await client().chat.completions.create(  # type: ignore[call-overload]
                model=model,
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
                **params,
            )
        except (openai.APIStatusError, openai.APIConnectionError) as e:
            delay = retry_delay(e, attempt)
            if delay is None:
                raise
            attempt += 1
            log.info("Kimi failed (%s); retry %s in %.1f s", type(e).__name__, attempt, delay)
            if on_retry is not None:
                await on_retry(delay, attempt)
            await asyncio.sleep(delay)


def sampling_params(conversation) -> dict:
    """Request parameters for a conversation's settings; unset ones keep the model's default."""
    params: dict = {}
    if conversation.temperature is not None:
        params["temperature"] = conversation.temperature
    if conversation.top_p is not None:
        params["top_p"] = conversation.top_p
    if conversation.max_tokens:
        params["max_completion_tokens"] = conversation.max_tokens
    if conversation.stop:
        params["stop"] = conversation.stop
    return params


@dataclass
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


def chunk_usage(chunk) -> Usage | None:
    """Kimi reports usage on the chunk (`include_usage`) or, its legacy way, on the final choice."""
    usage = chunk.usage
    if usage is None and chunk.choices:
        usage = getattr(chunk.choices[0], "usage", None)
    if usage is None:
        return None
    if isinstance(usage, dict):
        return Usage(usage.get("prompt_tokens"), usage.get("completion_tokens"))
    return Usage(usage.prompt_tokens, usage.completion_tokens)


# What can go wrong, by code; the text is looked up when shown, in the reader's language.
ERRORS = {
    "no_key": _(
        "No Kimi API key is configured on this server. "
        "An administrator must set MOONSHOT_API_KEY and restart KimiChat."
    ),
    "auth": _("Kimi rejected the API key (401). An administrator must check MOONSHOT_API_KEY."),
    "quota": _("The Kimi account has no balance or quota left. An administrator must top it up."),
    "permission": _("The Kimi account may not use this (403). An administrator must check it."),
    "model": _("Kimi does not know this model, or the key may not use it. Pick another model."),
    "rate_limit": _(
        "Kimi is busy or the rate limit was reached, also after retrying. "
        "Please wait a moment and try again."
    ),
    "content_filter": _("Kimi declined this request because its content was considered high risk."),
    "context_length": _(
        "The conversation is too long for this model. "
        "Start a new chat, or pick a model with a larger context window."
    ),
    "bad_request": _("Kimi refused the request."),
    "server": _("Kimi had an internal error. Please try again."),
    "timeout": _("Kimi did not answer in time. Please try again."),
    "connection": _("KimiChat could not reach Kimi. Check the server's network and try again."),
    "cut_off": _("The answer is incomplete: the stream ended before Kimi finished it."),
    "unknown": _("Something went wrong while talking to Kimi."),
    # Kimi was not asked: the detail says why (a file that could not be read, …).
    "refused": "",
}


def error_text(code: str, detail: str = "") -> str:
    if code == "refused":
        return detail
    text = str(ERRORS.get(code, ERRORS["unknown"]))
    return f"{text} ({detail})" if detail else text


def error_code(exc: BaseException) -> tuple[str, str]:
    """The ERRORS code for an exception, and Kimi's reason where it adds something.
    Never the key, never raw upstream HTML."""
    if isinstance(exc, NoKeyConfigured):
        return "no_key", ""
    if isinstance(exc, openai.APITimeoutError) and not _unreachable(exc):
        return "timeout", ""
    if isinstance(exc, openai.APIConnectionError):
        return "connection", ""
    if isinstance(exc, openai.APIStatusError):
        kind, status = error_type(exc), exc.status_code
        if status == 401:
            return "auth", ""
        if kind == "exceeded_current_quota_error":
            return "quota", ""
        if status == 403:
            return "permission", ""
        if status == 404:
            return "model", ""
        if status == 429:
            return "rate_limit", ""
        if kind == "content_filter":
            return "content_filter", ""
        reason = _upstream_reason(exc)
        if status == 400 and ("token" in reason.lower() or "too long" in reason.lower()):
            return "context_length", ""
        if status == 400:
            return "bad_request", reason
        if status >= 500:
            return "server", f"HTTP {status}"
        return "unknown", f"HTTP {status}"
    if isinstance(exc, openai.APIError):
        return "unknown", _upstream_reason(exc)
    return "unknown", ""


def _unreachable(exc: BaseException) -> bool:
    """The SDK's aiohttp transport reports a refused connection as a connect timeout; the
    cause tells them apart."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionError | aiohttp.ClientConnectorError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def error_type(exc: openai.APIStatusError) -> str:
    return str(exc.body.get("type", "")) if isinstance(exc.body, dict) else ""


def _upstream_reason(exc: openai.APIError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    return str(body.get("message") or exc.message)[:300]


RETRY_AFTER = re.compile(r"after (\d+(?:\.\d+)?) ?s", re.IGNORECASE)
MAX_RETRY_WAIT = 30.0


def retry_delay(exc: BaseException, attempt: int) -> float | None:
    """Seconds to wait before retrying a request that failed before streaming began, or None
    when it must not be retried: Kimi says when (Retry-After, or "try again after N seconds"),
    else KIMI_RETRY_BACKOFF doubling per attempt."""
    if attempt >= settings.KIMI_MAX_RETRIES:
        return None
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code == 429 and error_type(exc) == "exceeded_current_quota_error":
            return None  # no balance: retrying cannot help
        if exc.status_code != 429 and exc.status_code < 500:
            return None
        said = exc.response.headers.get("retry-after", "")
        match = RETRY_AFTER.search(_upstream_reason(exc))
        for value in (said, match.group(1) if match else ""):
            try:
                return min(float(value), MAX_RETRY_WAIT)
            except ValueError:
                pass
    elif not isinstance(exc, openai.APIConnectionError) or (
        isinstance(exc, openai.APITimeoutError) and not _unreachable(exc)
    ):
        return None  # a timeout already waited long enough
    backoff = settings.KIMI_RETRY_BACKOFF * 2**attempt
    return min(backoff * random.uniform(0.8, 1.2), MAX_RETRY_WAIT)


TITLE_PROMPT = (
    "Write a short title (at most six words) for the conversation below, in its language. "
    "Answer with the title only, no quotes."
)


async def title(*, model: str, question: str, answer: str) -> str:
    """A short title for a new conversation, asked of Kimi (not streamed)."""
    response = await client().chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": TITLE_PROMPT},
            {"role": "user", "content": f"User: {question[:2000]}\n\nAssistant: {answer[:2000]}"},
        ],
    )
    text = (response.choices[0].message.content or "") if response.choices else ""
    lines = [line.strip().strip("\"'“”「」#*").strip() for line in text.splitlines()]
    return next((line for line in lines if line), "")
