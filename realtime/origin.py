"""The websocket Origin check, as Django checks a form's Origin for CSRF: the page must come
from the very site the socket connects to — scheme, host and port — or from an origin in
CSRF_TRUSTED_ORIGINS. (Channels' AllowedHostsOriginValidator compares the host alone, so a
page on another port or over plain HTTP of the same host would pass.)"""

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain


class SameOriginValidator:
    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if not same_origin(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)


def same_origin(scope: Mapping[str, Any]) -> bool:
    headers = dict(scope.get("headers", []))
    origin = headers.get(b"origin", b"").decode("latin-1")
    host = headers.get(b"host", b"").decode("latin-1")
    if not origin or origin == "null":
        return False
    if trusted(origin):
        return True
    domain, _port = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return False
    scheme = "https" if secure(scope, headers) else "http"
    return origin == f"{scheme}://{host}"


def secure(scope: Mapping[str, Any], headers: Mapping[bytes, bytes]) -> bool:
    """Whether the page came over TLS: the socket's own scheme, or, behind a proxy that
    terminates TLS, the header SECURE_PROXY_SSL_HEADER names."""
    if scope.get("scheme") == "wss":
        return True
    if settings.SECURE_PROXY_SSL_HEADER:
        meta_name, value = settings.SECURE_PROXY_SSL_HEADER
        name = meta_name.removeprefix("HTTP_").lower().replace("_", "-").encode("latin-1")
        sent = headers.get(name, b"").decode("latin-1").split(",")[0].strip()
        return sent == value
    return False


def trusted(origin: str) -> bool:
    """CSRF_TRUSTED_ORIGINS: exact, or "https://*.example.com" for the subdomains."""
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    parsed = urlsplit(origin)
    for pattern in settings.CSRF_TRUSTED_ORIGINS:
        allowed = urlsplit(pattern)
        if "*" in allowed.netloc and allowed.scheme == parsed.scheme:
            if is_same_domain(parsed.netloc, allowed.netloc.replace("*", "", 1)):
                return True
    return False
