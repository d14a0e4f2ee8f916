"""The one place that talks to the Kimi API: the client, opening a stream (with retries),
titles, and what Kimi's errors mean. What is known of each model is in catalogue.py."""

import asyncio
import contextlib
import logging
import random
import re
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import httpx2
import openai
import orjson
from django.conf import settings
from django.utils.translation import gettext_lazy as _
from openai import AsyncAPIResponse

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
) -> "ChunkStream":
    """Start a streamed completion, retrying what Kimi says is worth retrying (busy, 5xx):
    `on_retry(seconds, attempt)` is told before each wait. Raises what cannot be retried.
    The caller closes the stream."""
    response = await _retrying(
        # The conversation's sampling parameters go as they are: no overload takes **params.
        lambda: (
            client()
            .chat.completions.with_streaming_response.create(  # type: ignore[call-overload]
                model=model,
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
                **params,
            )
            .__aenter__()
        ),
        on_retry,
    )
    return ChunkStream(response)


# One streamed chunk as Kimi wrote it (chat.completion.chunk, Kimi's own fields included).
Chunk = dict[str, Any]
DONE = b"[DONE]"
# After `[DONE]`, how long to read what is left of the response, so that its connection goes
# back to the pool (as the SDK's own stream does).
DRAIN_SECONDS = 0.1


class ChunkStream:
    """A streamed completion read as Kimi sends it: each `data:` event parsed once, into a
    plain dict. Building the SDK's pydantic chunks instead cost about a fifth of a process's
    CPU at 200 streams (docs/benchmarks.md). Fails as the SDK's stream does: a stall or a
    broken connection as its timeout and connection errors, Kimi's error event mid-stream as
    an APIError with Kimi's error body."""

    def __init__(self, response: AsyncAPIResponse[Any]) -> None:
        self.response = response

    def __aiter__(self) -> AsyncIterator[Chunk]:
        return self._chunks()

    async def close(self) -> None:
        """Close the HTTP response: Kimi stops generating (and billing) at once."""
        await self.response.close()

    async def _chunks(self) -> AsyncIterator[Chunk]:
        request = self.response.http_request
        received = self.response.iter_bytes()
        rest = b""  # a line not ended yet
        data: list[bytes] = []  # the data lines of the event being read
        try:
            async for block in received:
                lines = (rest + block if rest else block).split(b"\n")
                rest = lines.pop()
                for line in lines:
                    if line.startswith(b"data:"):
                        data.append(line[5:])
                    elif data and not line.strip():  # a blank line ends an event
                        event = data[0] if len(data) == 1 else b"\n".join(data)
                        data = []
                        if event.strip() == DONE:
                            await _drain(received)
                            return
                        yield event_chunk(event, request)
        except httpx2.TimeoutException as e:
            raise openai.APITimeoutError(request=request) from e
        except httpx2.RequestError as e:
            raise openai.APIConnectionError(request=request) from e


async def _drain(received: AsyncIterator[bytes]) -> None:
    with contextlib.suppress(TimeoutError, httpx2.RequestError):
        async with asyncio.timeout(DRAIN_SECONDS):
            async for _ in received:
                pass


def event_data(event: bytes) -> Any:
    """The JSON an SSE event's data carries (`[DONE]` is no JSON: ValueError)."""
    return orjson.loads(event)


def event_chunk(event: bytes, request: httpx2.Request) -> Chunk:
    """The chunk an event of a completion's stream carries. Kimi's error event mid-stream, or
    anything else not a chunk, raises an APIError."""
    try:
        chunk = event_data(event)
    except ValueError:
        chunk = None
    if not isinstance(chunk, dict):
        raise openai.APIError("Kimi sent an event that is not JSON", request, body=None)
    if chunk.get("error"):
        error = chunk["error"]
        message = error.get("message") if isinstance(error, dict) else None
        if not message or not isinstance(message, str):
            message = "An error occurred during streaming"
        raise openai.APIError(message, request, body=error)
    return chunk


T = TypeVar("T")


async def _retrying(
    open_: Callable[[], Awaitable[T]], on_retry: Callable[[float, int], Awaitable[None]] | None
) -> T:
    """`open_()`, again after what Kimi says is worth retrying (busy, 5xx): `on_retry(seconds,
    attempt)` is told before each wait. Raises what cannot be retried."""
    attempt = 0
    while True:
        try:
            return await open_()
        except (openai.APIStatusError, openai.APIConnectionError) as e:
            delay = retry_delay(e, attempt)
            if delay is None:
                raise
            attempt += 1
            log.info("Kimi failed (%s); retry %s in %.1f s", type(e).__name__, attempt, delay)
            if on_retry is not None:
                await on_retry(delay, attempt)
            await asyncio.sleep(delay)


# A completion not streamed can take as long as Kimi's own server allows (five minutes).
UNSTREAMED_TIMEOUT = 330.0


async def completion_open(*, body: dict[str, Any]) -> AsyncAPIResponse[Any]:
    """Send a request body as a client wrote it (the OpenAI-compatible API relays it) and
    return Kimi's response unparsed, its body still to be read: streamed or not, as the body
    asks. Never retried here: the client retries as it sees fit (the SDKs do), with Kimi's
    Retry-After. The caller closes it."""
    fields = dict(body)
    model, messages = fields.pop("model"), fields.pop("messages")
    options: dict[str, Any] = {}
    if not fields.get("stream"):
        options["timeout"] = openai.Timeout(
            max(settings.KIMI_STREAM_TIMEOUT, UNSTREAMED_TIMEOUT),
            connect=settings.KIMI_CONNECT_TIMEOUT,
        )
    # Every other field goes as it came, Kimi's own (thinking, partial…) included.
    return await (
        client()
        .chat.completions.with_streaming_response.create(
            model=model, messages=messages, extra_body=fields, **options
        )
        .__aenter__()
    )


@dataclass
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None  # Kimi's own field: prompt tokens from its cache


def chunk_usage(chunk: Chunk) -> Usage | None:
    """Kimi reports usage on the chunk (`include_usage`) or, its legacy way, on the final choice."""
    usage = chunk.get("usage")
    if usage is None:
        choices = chunk.get("choices")
        if choices:
            usage = choices[0].get("usage")
    return usage_of(usage) if isinstance(usage, dict) else None


def usage_of(counted: dict[str, Any]) -> Usage:
    """Kimi's `usage` object; a count that is not a number is taken as not given. Cached
    tokens are Kimi's own top-level field, else OpenAI's `prompt_tokens_details`."""

    def count(name: str) -> int | None:
        value = counted.get(name)
        return value if isinstance(value, int) else None

    cached = count("cached_tokens")
    details = counted.get("prompt_tokens_details")
    if cached is None and isinstance(details, dict):
        # Where OpenAI puts it; some of Kimi's responses carry it there too (or only there).
        value = details.get("cached_tokens")
        cached = value if isinstance(value, int) else None
    return Usage(count("prompt_tokens"), count("completion_tokens"), cached)


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


@dataclass
class Title:
    text: str
    usage: Usage | None


async def title(*, model: str, question: str, answer: str, params: dict[str, Any]) -> Title:
    """A short title for a new conversation, asked of Kimi (not streamed; `params` from
    catalogue.title_params)."""
    response = await client().chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": TITLE_PROMPT},
            {"role": "user", "content": f"User: {question[:2000]}\n\nAssistant: {answer[:2000]}"},
        ],
        **params,
    )
    text = (response.choices[0].message.content or "") if response.choices else ""
    lines = [line.strip().strip("\"'“”「」#*").strip() for line in text.splitlines()]
    usage = usage_of(response.usage.model_dump()) if response.usage is not None else None
    return Title(next((line for line in lines if line), ""), usage)


# What Kimi offers, and what the account has left. Asked now and then, not
# per message, each time with a client of its own closed straight after: these run on event
# loops that come and go (the admin's page goes through async_to_sync), which a pooled client
# would outlive.


@dataclass(frozen=True)
class ModelInfo:
    """One model as GET /v1/models describes it; None where Kimi does not say."""

    id: str
    context_length: int | None = None
    images: bool | None = None  # supports_image_in
    video: bool | None = None  # supports_video_in
    reasoning: bool | None = None  # supports_reasoning


@dataclass(frozen=True)
class Balance:
    """The account's balance, in its platform's currency (CNY on .cn, USD on .ai)."""

    available: float  # at 0 or below, Kimi refuses to answer
    voucher: float
    cash: float


def _short_client(timeout: float) -> openai.AsyncOpenAI:
    if not is_configured():
        raise NoKeyConfigured
    return openai.AsyncOpenAI(
        api_key=settings.MOONSHOT_API_KEY,
        base_url=settings.MOONSHOT_BASE_URL,
        timeout=openai.Timeout(timeout, connect=min(timeout, settings.KIMI_CONNECT_TIMEOUT)),
        max_retries=0,
    )


MODELS_TIMEOUT = 15.0  # seconds; read in the background
BALANCE_TIMEOUT = 5.0  # seconds; the admin's page waits for it


async def models() -> list[ModelInfo]:
    """The models Kimi offers this key, in Kimi's order."""
    async with asyncio.timeout(MODELS_TIMEOUT), _short_client(MODELS_TIMEOUT) as c:
        page = await c.models.list()
    return [_model_info(m.id, m.model_extra or {}) for m in page.data if m.id]


def _model_info(model_id: str, extra: dict[str, Any]) -> ModelInfo:
    length = extra.get("context_length")
    return ModelInfo(
        id=model_id,
        context_length=length if type(length) is int and length > 0 else None,
        images=_flag(extra.get("supports_image_in")),
        video=_flag(extra.get("supports_video_in")),
        reasoning=_flag(extra.get("supports_reasoning")),
    )


def _flag(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


async def balance() -> Balance:
    """The account's balance. Raises the SDK's errors, TimeoutError after BALANCE_TIMEOUT, or
    ValueError for an answer not shaped as documented."""
    async with asyncio.timeout(BALANCE_TIMEOUT), _short_client(BALANCE_TIMEOUT) as c:
        body = await c.get("/users/me/balance", cast_to=object)
    data = body.get("data") if isinstance(body, dict) and body.get("code", 0) == 0 else None
    if not isinstance(data, dict):
        raise ValueError("Kimi's balance came in an unexpected shape")
    try:
        return Balance(
            available=float(data["available_balance"]),
            voucher=float(data["voucher_balance"]),
            cash=float(data["cash_balance"]),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError("Kimi's balance came in an unexpected shape") from e
