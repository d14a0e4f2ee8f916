"""The OpenAI-compatible API: POST /v1/chat/completions and GET /v1/models, for the openai SDK
and whatever is built on it, with a personal API key.

A request goes to Kimi as the client wrote it, with the company's key, and Kimi's answer comes
back as Kimi wrote it, chunk by chunk as it arrives: nothing is parsed on the way but the last
chunks (for the usage), so Kimi's own fields pass through and each chunk costs a copy. Errors
come back in the OpenAI/Moonshot shape, {"error": {"message", "type", "param", "code"}}."""

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import openai
from asgiref.sync import SyncToAsync, sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

import kimi
from api import services
from api.services import Call, Outcome, Refusal
from kimi import catalogue
from kimi.tools import WEB_SEARCH

log = logging.getLogger(__name__)

# How much of a stream's end is kept to read its usage from (the last chunk or two).
TAIL_BYTES = 16 * 1024


def _db(function):
    """`function` (ORM work) run on the one thread that async code's ORM calls share, as the
    chat's sockets do: one long-lived connection. (Django would give each request a thread,
    and with it a new connection, of its own.)"""
    return sync_to_async(
        function, thread_sensitive=False, executor=SyncToAsync.single_thread_executor
    )


def error(status: int, kind: str, message: str, code: str | None = None, **headers: str):
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    response = JsonResponse(body, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def refusal_response(refusal: Refusal) -> JsonResponse:
    headers = {"Retry_After": str(refusal.retry_after)} if refusal.retry_after else {}
    return error(refusal.status, refusal.kind, refusal.message, refusal.code, **headers)


def _bearer(request: HttpRequest) -> str:
    scheme, _space, key = request.headers.get("Authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


def _off() -> JsonResponse:
    return error(404, "resource_not_found_error", _("The API is turned off on this server."))


def _read_request(request: HttpRequest) -> dict[str, Any]:
    """The request's JSON body, checked for what KimiChat needs of it (the rest is Kimi's to
    judge). Raises Refusal: 413 for a body too large (judged before it is read), 400 else."""
    try:
        length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        length = 0
    if length > settings.API_MAX_BODY_BYTES:
        raise Refusal(
            413,
            "invalid_request_error",
            _("The request body is too large (at most %(size)s bytes).")
            % {"size": f"{settings.API_MAX_BODY_BYTES:,}"},
            code="request_too_large",
        )
    raw = request.read(settings.API_MAX_BODY_BYTES + 1)
    if len(raw) > settings.API_MAX_BODY_BYTES:
        raise Refusal(413, "invalid_request_error", _("The request body is too large."))
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise Refusal(400, "invalid_request_error", _("The request body must be a JSON object."))
    model, messages = body.get("model"), body.get("messages")
    if not isinstance(model, str) or not model:
        raise Refusal(400, "invalid_request_error", _("“model” is required: a model's id."))
    if (
        not isinstance(messages, list)
        or not messages
        or not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages)
    ):
        raise Refusal(
            400,
            "invalid_request_error",
            _("“messages” is required: a list of objects, each with a “role”."),
        )
    if not isinstance(body.get("stream", False), bool):
        raise Refusal(400, "invalid_request_error", _("“stream” must be true or false."))
    if not settings.KIMI_WEB_SEARCH and _searches(body):
        # A deployment that must not reach the web: as on the page, so through the API.
        raise Refusal(400, "invalid_request_error", _("Web search is turned off on this server."))
    return body


def _searches(body: dict[str, Any]) -> bool:
    """Whether the request offers Kimi its built-in web search."""
    tools = body.get("tools")
    return isinstance(tools, list) and any(
        isinstance(tool, dict)
        and isinstance(tool.get("function"), dict)
        and tool["function"].get("name") == WEB_SEARCH
        for tool in tools
    )


@csrf_exempt
async def chat_completions(request: HttpRequest) -> HttpResponseBase:
    if not settings.API_KEYS:
        return _off()
    if request.method != "POST":
        return error(405, "invalid_request_error", _("Use POST."))
    try:
        body = _read_request(request)
        call = await _db(services.call_start)(
            key_text=_bearer(request), model=body["model"], stream=bool(body.get("stream"))
        )
    except Refusal as refusal:
        return refusal_response(refusal)
    try:
        upstream = await kimi.completion_open(body=body)
    except (openai.APIError, kimi.NoKeyConfigured) as e:
        status, refused = upstream_error(e)
        await _finish(call, body, Outcome(status=status, reached_kimi=False))
        return refused
    if body.get("stream"):
        response = StreamingHttpResponse(
            relay(upstream, call, body), content_type="text/event-stream"
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # proxies must not hold chunks back
        return response
    try:
        data = await upstream.read()
    except openai.APIError as e:
        status, refused = upstream_error(e)
        await _finish(call, body, Outcome(status=status, reached_kimi=True))
        return refused
    finally:
        await upstream.close()
    await _finish(call, body, answered(data))
    return HttpResponse(data, content_type="application/json")


DONE = b"data: [DONE]"


async def relay(upstream: Any, call: Call, body: dict[str, Any]) -> AsyncIterator[bytes]:
    """Kimi's stream as it comes, then the call finished. Kimi's closing `data: [DONE]` (or
    an error event) is sent once the call is in the ledger, so a client that has read to the
    end finds its usage counted. A client that leaves closes the stream to Kimi, and what was
    written counts all the same."""
    keep = settings.API_KEEP_CONVERSATIONS
    kept: list[bytes] = []
    tail = b""
    events = 0
    finished = False

    async def finish(status: int) -> None:
        nonlocal finished
        finished = True
        # In the ledger first, then Kimi stops generating (and billing): whoever sees the
        # stream to Kimi closed finds the call counted.
        await _finish(call, body, streamed(b"".join(kept) if keep else tail, status, events))
        with contextlib.suppress(Exception):
            await upstream.close()

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
        await finish(200)
        last = DONE + b"\n\n"
    except Exception as e:
        # Kimi stalled or went away mid-stream (the SDK's errors, or its transport's): the
        # client gets an error event, which the SDK raises as an APIError.
        log.info("API stream from Kimi failed: %r", e)
        code = "timeout" if "timeout" in type(e).__name__.lower() else "connection"
        await finish(504 if code == "timeout" else 502)
        event = {"error": {"message": kimi.error_text(code), "type": "server_error"}}
        last = b"data: " + json.dumps(event).encode() + b"\n\n"
    finally:
        if not finished:
            await finish(499)  # the client left before the end (as nginx logs it)
    yield last


async def _finish(call: Call, body: dict[str, Any], outcome: Outcome) -> None:
    # Shielded: a client that leaves cancels the response, not its bookkeeping.
    finishing = _db(services.call_finish)(call=call, body=body, outcome=outcome)
    try:
        await asyncio.shield(finishing)
    except asyncio.CancelledError:
        pass
    except Exception:
        log.exception("Finishing API call %s failed", call.row.pk)


def streamed(data: bytes, status: int, events: int) -> Outcome:
    """What a stream's end says: Kimi's usage (on the last chunk or in its final choice), the
    model that answered, and, where `data` is the whole stream, the answer's text."""
    outcome = Outcome(status=status, reached_kimi=True)
    # The role chunk and the final chunk carry no words; every other event about one token.
    outcome.estimated_completion = max(events - 2, 0)
    content: list[str] = []
    thinking: list[str] = []
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
        choice = (chunk.get("choices") or [{}])[0]
        if not isinstance(choice, dict):
            continue
        usage = chunk.get("usage") or choice.get("usage")
        if isinstance(usage, dict):
            outcome.usage = kimi.usage_of(usage)
        delta = choice.get("delta") or {}
        content.append(delta.get("content") or "")
        thinking.append(delta.get("reasoning_content") or "")
        if choice.get("finish_reason"):
            outcome.finish_reason = str(choice["finish_reason"])
    outcome.content, outcome.thinking = "".join(content), "".join(thinking)
    return outcome


def answered(data: bytes) -> Outcome:
    """What an answer not streamed says: its usage, model and text."""
    outcome = Outcome(status=200, reached_kimi=True)
    try:
        response = json.loads(data)
    except ValueError:
        return outcome
    if not isinstance(response, dict):
        return outcome
    outcome.model = str(response.get("model") or "")
    if isinstance(response.get("usage"), dict):
        outcome.usage = kimi.usage_of(response["usage"])
    choice = (response.get("choices") or [{}])[0]
    if not isinstance(choice, dict):
        return outcome
    message = choice.get("message") or {}
    outcome.content = str(message.get("content") or "")
    outcome.thinking = str(message.get("reasoning_content") or "")
    outcome.finish_reason = str(choice.get("finish_reason") or "")
    outcome.estimated_completion = catalogue.estimate_tokens(outcome.content + outcome.thinking)
    return outcome


def upstream_error(exc: BaseException) -> tuple[int, JsonResponse]:
    """Kimi's refusal, for the client: what is about the request (a bad parameter, a model Kimi
    does not know, filtered content, Kimi busy) passes as Kimi said it; what is about the
    company's account or KimiChat's reach of Kimi is said in KimiChat's words, never with a
    status that would blame the client's own key."""
    code, _detail = kimi.error_code(exc)
    if isinstance(exc, openai.APIStatusError) and code not in ("auth", "permission", "quota"):
        body = exc.body if isinstance(exc.body, dict) else {}
        kind = str(body.get("type") or "server_error")
        message = str(body.get("message") or exc.message)[:1000]
        return exc.status_code, error(exc.status_code, kind, message)
    status, kind = {
        "no_key": (503, "server_error"),
        "auth": (502, "server_error"),
        "permission": (502, "server_error"),
        "quota": (429, "exceeded_current_quota_error"),
        "timeout": (504, "server_error"),
    }.get(code, (502, "server_error"))
    return status, error(status, kind, kimi.error_text(code))


@csrf_exempt
def models(request: HttpRequest) -> HttpResponse:
    """The models offered here, as Kimi's GET /v1/models lists them (with what Kimi says of
    each: context_length, supports_image_in, supports_reasoning…)."""
    if not settings.API_KEYS:
        return _off()
    try:
        services.key_user(text=_bearer(request))
    except Refusal as refusal:
        return refusal_response(refusal)
    data = []
    for model_id in catalogue.offered():
        described = catalogue.kimi_says(model_id)
        data.append(
            {
                "id": model_id,
                "object": "model",
                "created": 0,
                "owned_by": "moonshot",
                "context_length": catalogue.context_window(model_id),
                "supports_image_in": catalogue.accepts_images(model_id),
                "supports_video_in": bool(described and described.video),
                "supports_reasoning": catalogue.thinking(model_id) != "never",
            }
        )
    return JsonResponse({"object": "list", "data": data})
