"""The OpenAI-compatible API: POST /v1/chat/completions, GET /v1/models(/{id}) and GET /v1/key,
for the openai SDK and whatever is built on it, with a personal API key.

A request is checked and bounded (the fields Kimi knows, n=1, its answer's cap within the
model's window and the budgets left), then goes to Kimi with the company's key, and Kimi's
answer comes back as Kimi wrote it, chunk by chunk as it arrives: nothing is parsed on the way
but the last chunks (for the usage), so Kimi's own fields pass through and each chunk costs a
copy. Nothing is retried here: the client's SDK retries, told Kimi's Retry-After. Errors come
back in the OpenAI/Moonshot shape, {"error": {"message", "type", "param", "code"}}."""

import asyncio
import json
import logging
from typing import Any

import openai
from asgiref.sync import SyncToAsync, sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils.translation import gettext as _

import kimi
from api import relay, requests, services
from api.errors import Refusal
from api.http import bearer, endpoint, error, read_json, refusal_response
from api.limits import key_limits
from api.relay import answered, openai_usage
from api.services import Call, Outcome
from kimi import catalogue

log = logging.getLogger(__name__)


def _db(function):
    """`function` (ORM work) run on the one thread that async code's ORM calls share, as the
    chat's sockets do: one long-lived connection. (Django would give each request a thread,
    and with it a new connection, of its own.)"""
    return sync_to_async(
        function, thread_sensitive=False, executor=SyncToAsync.single_thread_executor
    )


async def call_open(request: HttpRequest, body: dict[str, Any], response_id: str = "") -> Call:
    """The call opened for a checked chat body, its answer's cap written into the body."""
    asked = requests.max_tokens(body)
    call = await _db(services.call_start)(
        key_text=bearer(request),
        model=body["model"],
        stream=bool(body.get("stream")),
        prompt_tokens=requests.prompt_estimate(body),
        max_tokens=asked,
        response_id=response_id,
    )
    if call.cap is not None:
        requests.set_max_tokens(body, call.cap)
    return call


@endpoint("POST")
async def chat_completions(request: HttpRequest) -> HttpResponseBase:
    try:
        body, include_usage = requests.chat_body(read_json(request))
        call = await call_open(request, body)
    except Refusal as refusal:
        return refusal_response(refusal)
    # What stands if the client leaves before the answer (the view is cancelled): Kimi was
    # asked, so the call is closed as nginx would log it, its prompt counted.
    outcome = Outcome(status=499, reached_kimi=True)
    relayed = opened = False
    try:
        upstream = await kimi.completion_open(body=body)
        opened = True
        if body.get("stream"):
            relayed = True  # the relay finishes the call
            response = StreamingHttpResponse(
                relay.relayed(upstream, call, body, include_usage=include_usage, finish=finish),
                content_type="text/event-stream",
            )
            response["Cache-Control"] = "no-cache"
            response["X-Accel-Buffering"] = "no"  # proxies must not hold chunks back
            return response
        try:
            data = await upstream.read()
        finally:
            await upstream.close()
        outcome = answered(data)
        tokens = await finish(call, body, outcome)
        return HttpResponse(with_usage(data, tokens), content_type="application/json")
    except Exception as e:
        # Kimi refused (nothing spent), or went away while it answered (spent all the same).
        status, refused = upstream_error(e)
        outcome = Outcome(status=status, reached_kimi=opened)
        return refused
    finally:
        if not relayed and outcome.status != 200:
            await finish(call, body, outcome)


async def finish(call: Call, body: dict[str, Any], outcome: Outcome) -> tuple[int, int, int]:
    """Close the call; the tokens counted (prompt, completion, cached). Shielded: a client
    that leaves cancels the response, not its bookkeeping."""
    finishing = _db(services.call_finish)(call=call, body=body, outcome=outcome)
    try:
        return await asyncio.shield(finishing)
    except asyncio.CancelledError:
        return (0, 0, 0)
    except Exception:
        log.exception("Finishing API call %s failed", call.row.pk)
        return (0, 0, 0)


def with_usage(data: bytes, tokens: tuple[int, int, int]) -> bytes:
    """Kimi's answer, its usage given OpenAI's details (cached and reasoning tokens) too."""
    try:
        response = json.loads(data)
    except ValueError:
        return data
    if not isinstance(response, dict) or not isinstance(response.get("usage"), dict):
        return data
    response["usage"] = {**response["usage"], **openai_usage(tokens, response["usage"])}
    return json.dumps(response, ensure_ascii=False).encode()


def upstream_error(exc: BaseException) -> tuple[int, JsonResponse]:
    """Kimi's refusal, for the client: what is about the request (a bad parameter, a model Kimi
    does not know, filtered content, Kimi busy) passes as Kimi said it, with its Retry-After;
    what is about the company's account or KimiChat's reach of Kimi is said in KimiChat's
    words, never with a status that would blame the client's own key."""
    if not isinstance(exc, (openai.APIError, kimi.NoKeyConfigured)):
        log.info("API call to Kimi failed: %r", exc)  # its transport's own errors
        timeout = "timeout" in type(exc).__name__.lower()
        status, code = (504, "timeout") if timeout else (502, "connection")
        return status, error(status, "server_error", kimi.error_text(code))
    code, _detail = kimi.error_code(exc)
    if isinstance(exc, openai.APIStatusError) and code not in ("auth", "permission", "quota"):
        body = exc.body if isinstance(exc.body, dict) else {}
        kind = str(body.get("type") or "server_error")
        message = str(body.get("message") or exc.message)[:1000]
        wait = exc.response.headers.get("Retry-After")
        headers = {"Retry_After": wait[:20]} if wait else {}
        return exc.status_code, error(exc.status_code, kind, message, **headers)
    status, kind = {
        "no_key": (503, "server_error"),
        "auth": (502, "server_error"),
        "permission": (502, "server_error"),
        "quota": (429, "exceeded_current_quota_error"),
        "timeout": (504, "server_error"),
    }.get(code, (502, "server_error"))
    return status, error(status, kind, kimi.error_text(code))


def _model(model_id: str) -> dict[str, Any]:
    """A model as Kimi's GET /v1/models lists it (with what Kimi says of it: context_length,
    supports_image_in, supports_video_in, supports_reasoning)."""
    described = catalogue.kimi_says(model_id)
    return {
        "id": model_id,
        "object": "model",
        "created": 0,
        "owned_by": "moonshot",
        "context_length": catalogue.context_window(model_id),
        "supports_image_in": catalogue.accepts_images(model_id),
        "supports_video_in": bool(described and described.video),
        "supports_reasoning": catalogue.thinking(model_id) != "never",
    }


async def _key(request: HttpRequest):
    return await _db(services.key_user)(text=bearer(request))


@endpoint("GET")
async def models(request: HttpRequest) -> HttpResponseBase:
    """The models offered here (to this key: those it may use)."""
    try:
        key, _user = await _key(request)
    except Refusal as refusal:
        return refusal_response(refusal)
    offered = [m for m in catalogue.offered() if not key.allowed_models or m in key.allowed_models]
    return JsonResponse({"object": "list", "data": [_model(m) for m in offered]})


@endpoint("GET")
async def model(request: HttpRequest, model_id: str) -> HttpResponseBase:
    try:
        key, _user = await _key(request)
    except Refusal as refusal:
        return refusal_response(refusal)
    allowed = not key.allowed_models or model_id in key.allowed_models
    if not catalogue.is_offered(model_id) or not allowed:
        message = _("The model %(model)s is not offered here.") % {"model": model_id}
        return error(404, "invalid_request_error", message, code="model_not_found")
    return JsonResponse(_model(model_id))


@endpoint("GET")
async def key(request: HttpRequest) -> HttpResponseBase:
    """What the key that asks may do and what it has spent."""
    try:
        found, _user = await _key(request)
    except Refusal as refusal:
        return refusal_response(refusal)
    return JsonResponse(await _db(key_limits)(found))
