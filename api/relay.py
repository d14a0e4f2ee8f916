"""Kimi's answer on its way back: a stream relayed as it comes (nothing parsed but its tail),
the call finished once it ends however it ends, and what an answer says (usage, model, text)
read from it afterwards."""

import asyncio
import contextlib
import json
import logging
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from django.conf import settings

import kimi
from api.services import Call, Outcome
from kimi import catalogue

log = logging.getLogger(__name__)

# How much of a stream's end is kept to read its usage from (the last chunk or two).
TAIL_BYTES = 16 * 1024
DONE = b"data: [DONE]"

Finish = Callable[[Call, dict[str, Any], Outcome], Awaitable[tuple[int, int, int]]]


def openai_usage(tokens: tuple[int, int, int], kimi_usage: dict[str, Any] | None) -> dict:
    """The usage as OpenAI gives it: the tokens counted, with the prompt's cached tokens and,
    where Kimi says, the answer's reasoning tokens."""
    prompt, completion, cached = tokens
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }
    details = (kimi_usage or {}).get("completion_tokens_details")
    if isinstance(details, dict) and isinstance(details.get("reasoning_tokens"), int):
        usage["completion_tokens_details"] = {"reasoning_tokens": details["reasoning_tokens"]}
    return usage


@dataclass
class Progress:
    """Whether a stream to the client has begun, and whether its call is finished."""

    started: bool = False
    finished: bool = False


_closing: set[asyncio.Task] = set()


def closed_if_dropped(
    stream: AsyncGenerator[bytes, None],
    progress: Progress,
    close: Callable[[], Coroutine[Any, Any, None]],
) -> AsyncGenerator[bytes, None]:
    """`stream`, and `close()` run should it be dropped never started: a client that leaves
    just as the view returns makes Django cancel the response before reading it, and no
    `finally` in a generator never started runs. (It runs when the stream is collected, which
    may be late; a stream that has begun closes itself as its client leaves.)"""
    loop = asyncio.get_running_loop()

    def dropped() -> None:
        if progress.started or progress.finished:
            return
        progress.finished = True

        def start() -> None:
            job = loop.create_task(close())
            _closing.add(job)
            job.add_done_callback(_closing.discard)

        loop.call_soon_threadsafe(start)

    weakref.finalize(stream, dropped)
    return stream


def relayed(
    upstream: Any, call: Call, body: dict[str, Any], *, include_usage: bool, finish: Finish
) -> AsyncGenerator[bytes, None]:
    """The relay of Kimi's stream, its call closed (status 499) even if it never starts."""
    progress = Progress()

    async def never_started() -> None:
        await finish(call, body, streamed(b"", 499, 0))
        with contextlib.suppress(Exception):
            await upstream.close()

    stream = relay(upstream, call, body, progress, include_usage=include_usage, finish=finish)
    return closed_if_dropped(stream, progress, never_started)


async def relay(
    upstream: Any,
    call: Call,
    body: dict[str, Any],
    progress: Progress,
    *,
    include_usage: bool,
    finish: Finish,
) -> AsyncGenerator[bytes, None]:
    """Kimi's stream as it comes, then the call finished. Kimi's closing `data: [DONE]` (or
    an error event) is sent once the call is in the ledger, so a client that has read to the
    end finds its usage counted; before it, where the client asked, the usage in OpenAI's
    shape (a chunk with no choices). A client that leaves closes the stream to Kimi, and what
    was written counts all the same."""
    progress.started = True
    keep = settings.API_KEEP_CONVERSATIONS
    kept: list[bytes] = []
    tail = b""
    events = 0

    async def close(status: int) -> tuple[Outcome, tuple[int, int, int]]:
        progress.finished = True
        # In the ledger first, then Kimi stops generating (and billing): whoever sees the
        # stream to Kimi closed finds the call counted.
        outcome = streamed(b"".join(kept) if keep else tail, status, events)
        tokens = await finish(call, body, outcome)
        with contextlib.suppress(Exception):
            await upstream.close()
        return outcome, tokens

    try:
        async for chunk in upstream.iter_bytes():
            done = chunk.find(DONE)
            if done >= 0:
                chunk = chunk[:done]
            if chunk:
                yield chunk
                events += chunk.count(b"data:")
                tail = (tail + chunk)[-TAIL_BYTES:]
                if keep:
                    kept.append(chunk)
            if done >= 0:
                break
        outcome, tokens = await close(200)
        last = DONE + b"\n\n"
        if include_usage:
            last = usage_event(outcome, tokens) + last
    except Exception as e:
        # Kimi stalled or went away mid-stream (the SDK's errors, or its transport's): the
        # client gets an error event, which the SDK raises as an APIError.
        log.info("API stream from Kimi failed: %r", e)
        code = "timeout" if "timeout" in type(e).__name__.lower() else "connection"
        await close(504 if code == "timeout" else 502)
        event = {"error": {"message": kimi.error_text(code), "type": "server_error"}}
        last = b"data: " + json.dumps(event).encode() + b"\n\n"
    finally:
        if not progress.finished:
            await close(499)  # the client left before the end (as nginx logs it)
    yield last


def usage_event(outcome: Outcome, tokens: tuple[int, int, int]) -> bytes:
    chunk = {
        "id": outcome.chunk_id,
        "object": "chat.completion.chunk",
        "created": outcome.created,
        "model": outcome.model,
        "choices": [],
        "usage": openai_usage(tokens, outcome.raw_usage),
    }
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def streamed(data: bytes, status: int, events: int) -> Outcome:
    """What a stream's end says: Kimi's usage (on the last chunk or in its final choice), the
    model that answered, and, where `data` is the whole stream, the answer's text."""
    outcome = Outcome(status=status, reached_kimi=True)
    # The role chunk and the final chunk carry no words; every other event about one token.
    outcome.estimated_completion = max(events - 2, 0)
    content: list[str] = []
    reasoning: list[str] = []
    for line in data.split(b"\n"):
        if not line.startswith(b"data:"):
            continue
        try:
            chunk = kimi.event_data(line[5:])
        except ValueError:
            continue  # [DONE], or the start of the tail cut through a line
        if not isinstance(chunk, dict):
            continue
        outcome.model = str(chunk.get("model") or outcome.model)
        outcome.chunk_id = str(chunk.get("id") or outcome.chunk_id)
        created = chunk.get("created")
        outcome.created = created if isinstance(created, int) else outcome.created
        choice = (chunk.get("choices") or [{}])[0]
        if not isinstance(choice, dict):
            continue
        usage = chunk.get("usage") or choice.get("usage")
        if isinstance(usage, dict):
            outcome.usage, outcome.raw_usage = kimi.usage_of(usage), usage
        delta = choice.get("delta") or {}
        content.append(delta.get("content") or "")
        reasoning.append(delta.get("reasoning_content") or "")
        if choice.get("finish_reason"):
            outcome.finish_reason = str(choice["finish_reason"])
    outcome.content, outcome.thinking = "".join(content), "".join(reasoning)
    return outcome


def answered(data: bytes) -> Outcome:
    """What an answer not streamed says: its usage, model, text and tool calls."""
    outcome = Outcome(status=200, reached_kimi=True)
    try:
        response = json.loads(data)
    except ValueError:
        return outcome
    if not isinstance(response, dict):
        return outcome
    outcome.model = str(response.get("model") or "")
    if isinstance(response.get("usage"), dict):
        outcome.usage, outcome.raw_usage = kimi.usage_of(response["usage"]), response["usage"]
    choice = (response.get("choices") or [{}])[0]
    if not isinstance(choice, dict):
        return outcome
    message = choice.get("message") or {}
    outcome.content = str(message.get("content") or "")
    outcome.thinking = str(message.get("reasoning_content") or "")
    if isinstance(message.get("tool_calls"), list):
        outcome.tool_calls = message["tool_calls"]
    outcome.finish_reason = str(choice.get("finish_reason") or "")
    outcome.estimated_completion = catalogue.estimate_tokens(outcome.content + outcome.thinking)
    return outcome
