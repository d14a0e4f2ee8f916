"""What every /v1 path shares: OpenAI's error shape, the key a request carries, its JSON body
read within bounds, CORS for the origins API_CORS_ORIGINS names, and the answer to a path or a
method that is not there. (A few lines of CORS do here what django-cors-headers would: only
/v1 takes cross-origin calls, and only with a bearer key, never cookies.)"""

import functools
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from api.errors import Refusal
from realtime.server import api_too_large_message

View = Callable[..., Coroutine[Any, Any, HttpResponseBase]]


def error(status: int, kind: str, message: str, code: str | None = None, **headers: str):
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    response = JsonResponse(body, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def refusal_response(refusal: Refusal) -> JsonResponse:
    headers = {"Retry_After": str(refusal.retry_after)} if refusal.retry_after else {}
    return error(refusal.status, refusal.kind, refusal.message, refusal.code, **headers)


def bearer(request: HttpRequest) -> str:
    scheme, _space, key = request.headers.get("Authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


def read_json(request: HttpRequest) -> dict[str, Any]:
    """The request's body, a JSON object. Raises Refusal: 413 for a body too large (judged
    before it is read), 400 for anything that is not strict JSON (NaN, a lone surrogate,
    nesting past 1,024 levels) or not an object."""
    try:
        length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        length = 0
    raw = b""
    if length <= settings.API_MAX_BODY_BYTES:
        raw = request.read(settings.API_MAX_BODY_BYTES + 1)
    if length > settings.API_MAX_BODY_BYTES or len(raw) > settings.API_MAX_BODY_BYTES:
        raise Refusal(413, "invalid_request_error", api_too_large_message(), "request_too_large")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise Refusal(
            400,
            "invalid_request_error",
            _("The request body is not valid JSON (%(reason)s).") % {"reason": str(e)[:200]},
        ) from None
    if not isinstance(body, dict):
        raise Refusal(400, "invalid_request_error", _("The request body must be a JSON object."))
    return body


def _off() -> JsonResponse:
    return error(404, "resource_not_found_error", _("The API is turned off on this server."))


def _allowed_origin(request: HttpRequest) -> str:
    origin = request.headers.get("Origin", "")
    return origin if origin and origin in settings.API_CORS_ORIGINS else ""


def _with_cors(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    origin = _allowed_origin(request)
    if origin:
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Expose-Headers"] = "Retry-After"
        response["Vary"] = "Origin"
    return response


def _preflight(request: HttpRequest, methods: tuple[str, ...]) -> HttpResponse:
    response = HttpResponse(status=204)
    response["Allow"] = ", ".join((*methods, "OPTIONS"))
    if _allowed_origin(request):
        response["Access-Control-Allow-Methods"] = response["Allow"]
        # The SDKs send headers of their own (x-stainless-…): all those asked for may come.
        asked = request.headers.get("Access-Control-Request-Headers", "")
        response["Access-Control-Allow-Headers"] = asked or "Authorization, Content-Type"
        response["Access-Control-Max-Age"] = "600"
    return response


def endpoint(*methods: str) -> Callable[[View], View]:
    """An async /v1 view that answers only `methods` (and CORS preflights), in OpenAI's
    shape, and only while the API is on."""

    def wrap(view: View) -> View:
        @csrf_exempt
        @functools.wraps(view)
        async def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not settings.API_KEYS:
                response: HttpResponseBase = _off()
            elif request.method == "OPTIONS":
                response = _preflight(request, methods)
            elif request.method not in methods:
                message = _("Use %(methods)s here.") % {"methods": " or ".join(methods)}
                response = error(405, "invalid_request_error", message)
                response["Allow"] = ", ".join(methods)
            else:
                response = await view(request, *args, **kwargs)
            return _with_cors(request, response)

        return wrapped

    return wrap


@endpoint("GET", "POST", "PUT", "PATCH", "DELETE")
async def not_found(request: HttpRequest, rest: str = "") -> HttpResponseBase:
    """Any other path under /v1: OpenAI's 404, never an HTML page."""
    return error(
        404,
        "invalid_request_error",
        _("Unknown API path: %(method)s %(path)s.")
        % {"method": request.method, "path": request.path},
        code="unknown_url",
    )
