"""Daphne, bounded for what outsiders send: a request body over its route's limit is refused
(413) as soon as its length is known, before it is read; a body is handed to Django as Django
reads it, from the disk file Twisted spooled it to (Daphne would queue all of it in memory at
once); and a websocket whose page does not read is closed rather than buffered for."""

import asyncio
import io
import json
import logging
import time
from functools import partial
from typing import IO, Any
from urllib.parse import unquote

from daphne import http_protocol, ws_protocol
from daphne import server as daphne_server
from daphne.cli import CommandLineInterface as DaphneCommandLine
from django.conf import settings
from django.utils.translation import gettext as _
from twisted.internet import defer, reactor

from kimichat import logs
from realtime import lifecycle, limits

log = logging.getLogger(__name__)

# What a body gets beyond the upload limit: the multipart boundaries, headers and fields.
UPLOAD_MARGIN = 1024 * 1024
UPLOAD_PATHS = ("/files/upload/",)
API_PREFIX = "/v1/"
LOGIN_PREFIX = "/accounts/"
LOGIN_MAX_BYTES = 64 * 1024
SLOW_READER_SECONDS = 10
HARD_LIMIT_TIMES = 4


def body_limit(path: str) -> int:
    """The largest body a request to `path` may send."""
    if path.startswith(UPLOAD_PATHS):
        return settings.UPLOAD_MAX_BYTES + UPLOAD_MARGIN
    if path.startswith(API_PREFIX):
        return settings.API_MAX_BODY_BYTES
    if path.startswith(LOGIN_PREFIX):
        return LOGIN_MAX_BYTES
    return settings.REQUEST_MAX_BYTES


def api_too_large_message() -> str:
    """What the API says of a body over its limit (here, and in the API's own read)."""
    return _(
        "The request body is too large: at most %(size)s bytes, room for one image of "
        "%(image)s MB as base64 with its text. Send larger images smaller."
    ) % {"size": f"{settings.API_MAX_BODY_BYTES:,}", "image": settings.API_LARGEST_IMAGE_MB}


def too_large(path: str) -> bytes:
    """The whole 413 response (the connection closes after it)."""
    limit = body_limit(path)
    if path.startswith(API_PREFIX):
        # The OpenAI error shape, which the SDK reads.
        message = api_too_large_message()
        error = {"message": message, "type": "invalid_request_error", "code": "request_too_large"}
        body = json.dumps({"error": error}).encode()
        content_type = b"application/json"
    else:
        body = b"Request body too large: at most %d bytes are allowed here.\n" % limit
        content_type = b"text/plain; charset=utf-8"
    return (
        b"HTTP/1.1 413 Content Too Large\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
        b"Connection: close\r\n\r\n%s" % (content_type, len(body), body)
    )


class Request(http_protocol.WebRequest):
    received = 0
    refused = False

    def _path(self) -> str:
        # Twisted knows the request line before the body; the request learns it after.
        raw = getattr(self.channel, "_path", b"") or b""
        return unquote(raw.split(b"?", 1)[0].decode("latin-1"))

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > body_limit(self._path()):
            self.refuse()
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self.refused:
            return
        self.received += len(data)
        # A body without a Content-Length is cut off once it is over the limit.
        if self.received > body_limit(self._path()):
            self.refuse()
            return
        super().handleContentChunk(data)

    def refuse(self) -> None:
        if self.refused:
            return
        self.refused = True
        path = self._path()
        log.info("Refused a request body over the limit for %s", path)
        # As Twisted answers a bad request: at once, then the connection goes.
        self.channel.transport.write(too_large(path))
        self.channel.loseConnection()

    def process(self) -> Any:
        if self.refused:
            return None
        if self._socket_over_limit():
            # Refused here, before the websocket handshake and the application: a flood of
            # sockets from one browser costs little more than the requests themselves.
            self.setResponseCode(429, b"Too Many Requests")
            self.setHeader(b"content-type", b"text/plain; charset=utf-8")
            self.write(b"Too many open pages: close some and try again.\n")
            self.finish()
            return None
        return super().process()

    def _socket_over_limit(self) -> bool:
        headers = self.requestHeaders
        if (headers.getRawHeaders(b"upgrade") or [b""])[0].lower() != b"websocket":
            return False
        key = limits.session_key(b"; ".join(headers.getRawHeaders(b"cookie") or []))
        return key is not None and limits.session_full(key)


class HTTPFactory(http_protocol.HTTPFactory):
    def buildProtocol(self, addr: Any) -> Any:
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = Request
        return protocol


class BodyQueue(asyncio.Queue):
    """An HTTP application's input: its body read from the spool file a chunk at a time, as
    the application asks; then whatever else Daphne sends (a disconnect)."""

    def __init__(self, body: IO[bytes], chunk_size: int) -> None:
        super().__init__()
        self.body: IO[bytes] | None = body
        self.chunk_size = chunk_size

    def put_nowait(self, item: dict) -> None:
        if item.get("type") == "http.request":
            return  # Daphne's copy of the body, which it was given empty
        super().put_nowait(item)

    async def get(self) -> dict:
        if self.body is not None:
            chunk = self.body.read(self.chunk_size)
            more = len(chunk) == self.chunk_size
            if not more:
                self.body.close()
                self.body = None
            return {"type": "http.request", "body": chunk, "more_body": more}
        return await super().get()


class WebSocketProtocol(ws_protocol.WebSocketProtocol):
    maxMessagePayloadSize: int  # set by the factory's options (autobahn)

    def sendMessage(self, payload: bytes, isBinary: bool = False, **kwargs: Any) -> None:
        # Autobahn holds what is sent to the limit on what is received. What a page sends
        # stays small; what it is sent (a long answer, rendered) may be larger.
        limit, self.maxMessagePayloadSize = self.maxMessagePayloadSize, 0
        try:
            super().sendMessage(payload, isBinary, **kwargs)
        finally:
            self.maxMessagePayloadSize = limit


# What a page's browser reads as "the server restarts: reconnect" (htmx-ext-ws reconnects
# on it, to whichever process the proxy picks).
CLOSE_RESTARTING = 1012


class Server(daphne_server.Server):
    # Daphne builds its factories in run(): the HTTP one is replaced by one that builds
    # requests that bound their bodies, the websocket one builds the protocol above.
    @property
    def http_factory(self) -> HTTPFactory:
        return self._http_factory

    @http_factory.setter
    def http_factory(self, factory: Any) -> None:
        self._http_factory = HTTPFactory(self)

    @property
    def ws_factory(self) -> Any:
        return self._ws_factory

    @ws_factory.setter
    def ws_factory(self, factory: Any) -> None:
        factory.protocol = WebSocketProtocol
        self._ws_factory = factory

    def run(self) -> None:
        # The apps' background work (answers' leases) starts once the loop runs (Twisted
        # calls callWhenRunning's before the asyncio loop itself runs).
        reactor.callLater(0, lifecycle.serve)  # type: ignore[arg-type]  # zope stubs
        super().run()

    def log_action(self, protocol: str, action: str, details: dict) -> None:
        # The access log keeps no secret that a link carries (an invitation, a reset key).
        path = details.get("path")
        if isinstance(path, str):
            details = {**details, "path": logs.loggable(path)}
        super().log_action(protocol, action, details)

    def listen_success(self, port: Any) -> None:
        super().listen_success(port)
        self.kimichat_ports = [*getattr(self, "kimichat_ports", []), port]

    def kill_all_applications(self) -> Any:
        """SIGTERM (or SIGINT): stop gracefully before Daphne cancels every application."""
        stopping = defer.Deferred.fromFuture(asyncio.ensure_future(self.drain()))
        stopping.addErrback(lambda failure: log.error("Stopping: %s", failure.getErrorMessage()))
        stopping.addBoth(lambda _: super(Server, self).kill_all_applications())
        return stopping

    async def drain(self) -> None:
        """Take no new connections (the proxy sends them to the other processes), let the
        answers running here finish for up to SHUTDOWN_GRACE seconds (lifecycle.drain; the
        rest are saved and handed over), and tell the pages to reconnect: at once where
        another process can show them the answers (Redis), else once they are done."""
        for port in getattr(self, "kimichat_ports", []):
            port.stopListening()
        if settings.REDIS_URL:
            self.close_sockets()
        await lifecycle.drain(settings.SHUTDOWN_GRACE)
        self.close_sockets()

    def close_sockets(self) -> None:
        for protocol in list(self.connections):
            if not isinstance(protocol, ws_protocol.WebSocketProtocol):
                continue
            if getattr(protocol, "kimichat_restarting", False):
                continue
            protocol.kimichat_restarting = True
            try:
                # Autobahn's sendClose() allows only 1000 and 3000-4999; the frame is plain.
                protocol.sendCloseFrame(code=CLOSE_RESTARTING, isReply=False)
            except Exception:
                protocol.dropConnection(abort=True)  # read as 1006: reconnect too

    def create_application(self, protocol: Any, scope: dict) -> Any:
        if scope["type"] != "http":
            return super().create_application(protocol, scope)
        # As Daphne's own, but the application reads the body from the spool file.
        assert "application_instance" not in self.connections[protocol]
        queue = BodyQueue(protocol.content, max(self.request_buffer_size, 64 * 1024))
        protocol.content = io.BytesIO()
        scope.setdefault("asgi", {"version": "3.0"})
        instance = self.application(
            scope=scope, receive=queue.get, send=partial(self.handle_reply, protocol)
        )
        if protocol not in self.connections:
            return None
        self.connections[protocol]["application_instance"] = asyncio.ensure_future(
            instance, loop=asyncio.get_event_loop()
        )
        return queue

    async def handle_reply(self, protocol: Any, message: dict) -> None:
        if message.get("type") == "websocket.send" and _left_behind(protocol):
            # A page that does not read what it is sent: closed, not buffered for. A page
            # that reads again reconnects and catches up.
            if not getattr(protocol, "kimichat_dropped", False):
                protocol.kimichat_dropped = True
                log.info("Closed a websocket whose page left %d bytes untaken", _unsent(protocol))
                protocol.dropConnection(abort=True)
            return
        await super().handle_reply(protocol, message)


def _left_behind(protocol: Any) -> bool:
    """Whether a socket's page has fallen too far behind: more than SOCKET_MAX_UNSENT_BYTES
    waiting for it for SLOW_READER_SECONDS (a page busy for a moment catches up), or several
    times that at all."""
    limit, unsent = settings.SOCKET_MAX_UNSENT_BYTES, _unsent(protocol)
    if unsent <= limit:
        protocol.kimichat_behind_since = None
        return False
    now = time.monotonic()
    since = getattr(protocol, "kimichat_behind_since", None)
    if since is None:
        protocol.kimichat_behind_since = since = now
    return unsent > HARD_LIMIT_TIMES * limit or now - since > SLOW_READER_SECONDS


def _unsent(protocol: Any) -> int:
    """Bytes written to a connection that its peer has not taken yet (Twisted's buffers)."""
    transport = getattr(protocol, "transport", None)
    if transport is None:
        return 0
    buffered = len(getattr(transport, "dataBuffer", b"")) - getattr(transport, "offset", 0)
    return buffered + getattr(transport, "_tempDataLen", 0)


class CommandLineInterface(DaphneCommandLine):
    server_class = Server
