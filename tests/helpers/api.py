"""A running server for the API's tests: Daphne on loopback, serving the real ASGI
application, with the Kimi stub behind it; a key of alice's; the openai SDK pointed at it."""

import socket
import threading

import openai
import pytest
from daphne.server import Server
from django.db import connections

from api import services
from kimichat.asgi import application


@pytest.fixture(scope="session")
def api_server():
    """Daphne in a thread of the test process: it shares the test database and settings."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ready = threading.Event()
    server = Server(
        application,
        endpoints=[f"tcp:port={port}:interface=127.0.0.1"],
        signal_handlers=False,
        ready_callable=ready.set,
        verbosity=0,
    )
    threading.Thread(target=server.run, daemon=True, name="daphne").start()
    assert ready.wait(10), "Daphne did not start"
    yield f"http://127.0.0.1:{port}"
    from twisted.internet import reactor

    reactor.callFromThread(reactor.stop)


@pytest.fixture(autouse=True)
def _short_lived_connections():
    """The server's threads come and go with its requests: their database connections must
    close with them (not linger for CONN_MAX_AGE), or the test database cannot be dropped."""
    shared = connections.settings["default"]
    before = shared["CONN_MAX_AGE"]
    shared["CONN_MAX_AGE"] = 0
    yield
    shared["CONN_MAX_AGE"] = before


@pytest.fixture
def alice_key(alice) -> str:
    return services.key_create(user=alice, name="laptop")[1]


def sdk(base_url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url + "/v1", api_key=key, max_retries=0)


def abandon(api_server: str, key: str, path: str, body: dict, kimi) -> None:
    """A client that sends a call and goes away once Kimi has been asked (as an SDK's
    timeout does): the request written on a bare socket, closed on the stub's word."""
    import json
    from urllib.parse import urlsplit

    address = urlsplit(api_server)
    payload = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {address.netloc}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode()
    with socket.create_connection((address.hostname, address.port)) as client:
        client.sendall(head + payload)
        kimi.wait_for(lambda: bool(kimi.requests))


def closed_with(status: int):
    """The call once the server has closed it with `status` (it does as the client goes)."""
    import time

    from django.db import OperationalError

    from api.models import ApiCall

    deadline = time.monotonic() + 60  # a guard: it returns as soon as the call is closed
    while True:
        assert time.monotonic() < deadline, f"no call was closed with {status}"
        try:
            # The test database is SQLite in memory, shared with the server's thread: a read
            # while that thread writes is refused ("table is locked") rather than waited for.
            if ApiCall.objects.filter(status=status).exists():
                return ApiCall.objects.get(status=status)
        except OperationalError:
            pass
        time.sleep(0.01)
