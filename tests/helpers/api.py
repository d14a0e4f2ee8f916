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
