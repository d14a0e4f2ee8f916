"""The one place that talks to the Kimi API: client factory, model catalogue, error mapping."""

import asyncio
import weakref
from dataclasses import dataclass

import openai
from django.conf import settings
from django.utils.translation import gettext as _

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
            max_retries=settings.KIMI_MAX_RETRIES,
            # aiohttp costs noticeably less CPU per streamed chunk than httpx's transport.
            http_client=openai.DefaultAioHttpClient(),
        )
    return per_loop[key]


async def aclose() -> None:
    """Close this event loop's clients (their connection pools die with the loop)."""
    for c in _clients.pop(asyncio.get_running_loop(), {}).values():
        await c.close()


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


def error_message(exc: BaseException) -> str:
    """A sentence a user understands; never the key, never raw upstream HTML."""
    if isinstance(exc, NoKeyConfigured):
        return _(
            "No Kimi API key is configured on this server. "
            "An administrator must set MOONSHOT_API_KEY and restart KimiChat."
        )
    if isinstance(exc, openai.APITimeoutError):
        return _("Kimi did not answer in time. Please try again.")
    if isinstance(exc, openai.APIConnectionError):
        return _("KimiChat could not reach Kimi. Check the server's network and try again.")
    if isinstance(exc, openai.APIStatusError):
        kind = (exc.body or {}).get("type") if isinstance(exc.body, dict) else None
        status = exc.status_code
        if status == 401:
            return _(
                "Kimi rejected the API key (401). An administrator must check MOONSHOT_API_KEY."
            )
        if kind == "exceeded_current_quota_error" or status == 403:
            return _(
                "The Kimi account has no balance or quota left. An administrator must top it up."
            )
        if status == 404:
            return _(
                "Kimi does not know this model, or the key may not use it. Pick another model."
            )
        if status == 429:
            return _(
                "Kimi is busy or the rate limit was reached. Please wait a moment and try again."
            )
        if kind == "content_filter":
            return _("Kimi declined this request because its content was considered high risk.")
        if status == 400:
            return _("Kimi refused the request: %(reason)s") % {"reason": _upstream_reason(exc)}
        if status >= 500:
            return _("Kimi had an internal error (%(status)s). Please try again.") % {
                "status": status
            }
        return _("Kimi answered with an error (%(status)s).") % {"status": status}
    if isinstance(exc, openai.APIError):
        return _("Kimi reported an error: %(reason)s") % {"reason": _upstream_reason(exc)}
    return _("Something went wrong while talking to Kimi.")


def _upstream_reason(exc: openai.APIError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    return str(body.get("message") or exc.message)[:300]
