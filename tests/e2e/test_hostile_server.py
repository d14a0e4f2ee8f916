"""The server process itself refuses what would exhaust it: a request body over its route's
limit gets 413 before it is read (or as soon as it grows past the limit), and a websocket
that does not read what it is sent is closed, not buffered for; the answer it was watching
is finished and saved all the same, and everyone else goes on being answered."""

import asyncio
import json
import socket
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import aiohttp
import pytest

from tests.e2e.conftest import ROOT, _daphne, _prepare
from tests.helpers.kimi_stub import Script

UPLOAD_LIMIT = 1024 * 1024
UNSENT_LIMIT = 256 * 1024


@pytest.fixture(scope="module")
def bounded(tmp_path_factory, kimi_stub):
    """A server with small limits, two users logged in (cookies), a conversation each."""
    tmp = tmp_path_factory.mktemp("hostile")
    env = _prepare(
        tmp,
        kimi_stub,
        UPLOAD_MAX_BYTES=str(UPLOAD_LIMIT),
        SOCKET_MAX_UNSENT_BYTES=str(UNSENT_LIMIT),
        USER_MAX_SOCKETS="3",
    )
    seeded = subprocess.run(
        [sys.executable, "-m", "bench.seed", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    users = json.loads(seeded.stdout.strip().splitlines()[-1])
    with _daphne(env, tmp / "daphne.log") as url:
        yield url, users, tmp / "db.sqlite3"


def _exchange(url: str, head: bytes, body_chunks: list[bytes] = ()) -> bytes:
    """Send a request's head (and chunks of its body), then read the answer to its end."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as s:
        s.sendall(head)
        for chunk in body_chunks:
            try:
                s.sendall(chunk)
            except OSError:
                break  # the server answered and closed: the rest is not wanted
        answer = b""
        try:
            while data := s.recv(65536):
                answer += data
        except ConnectionResetError:
            pass
        return answer


def _head(method: str, path: str, **headers: str) -> bytes:
    headers = {"Host": "127.0.0.1", **headers}
    lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.parametrize(
    ("path", "length"),
    [("/accounts/login/", 512 * 1024 * 1024), ("/files/upload/", UPLOAD_LIMIT * 3)],
)
def test_a_body_over_the_limit_is_refused_before_it_is_sent(bounded, path, length):
    url, _users, _db = bounded
    # Only the head goes: the server must answer without waiting for the body.
    answer = _exchange(url, _head("POST", path, **{"Content-Length": str(length)}))
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"Request body too large" in answer
    assert _exchange(url, _head("GET", "/accounts/login/", Connection="close")).startswith(
        b"HTTP/1.1 200 "
    )


def test_a_body_without_a_length_is_cut_off_at_the_limit(bounded):
    url, _users, _db = bounded
    chunk = b"%x\r\n%s\r\n" % (65536, b"a" * 65536)
    answer = _exchange(
        url, _head("POST", "/accounts/login/", **{"Transfer-Encoding": "chunked"}), [chunk] * 64
    )
    assert answer.startswith(b"HTTP/1.1 413 ")


def test_the_api_refuses_a_huge_body_in_the_openai_error_shape(bounded):
    url, _users, _db = bounded
    answer = _exchange(url, _head("POST", "/v1/chat/completions", **{"Content-Length": "10" * 9}))
    assert answer.startswith(b"HTTP/1.1 413 ")
    error = json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "request_too_large"
    assert "image of 20 MB" in error["message"]  # what fits: the largest image Kimi takes


def test_a_socket_that_does_not_read_is_closed_and_its_answer_still_saved(bounded, kimi):
    url, users, db = bounded
    # An answer far longer than the socket's buffers and the limit on what waits for it,
    # streamed fast (2 MB/s) but not all at once.
    words = "lorem ipsum dolor sit amet " * 400
    kimi.script = Script(tokens=[words] * 400, delay=0.005)
    reader, final = _run(_flood_a_reader(url, users))
    with sqlite3.connect(db) as connection:
        state, length = connection.execute(
            "SELECT state, length(content) FROM conversations_message"
            " WHERE role = 'assistant' ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert 'data-state="done"' in final and (state, length) == ("done", len(words) * 400)
    # The socket that read nothing was closed: reading now, it ends long before the answer.
    received = 0
    reader.settimeout(20)
    try:
        while data := reader.recv(65536):
            received += len(data)
    except ConnectionResetError:
        pass
    reader.close()
    assert received < len(words) * 400
    # Another user is answered as ever.
    assert "lorem" in _run(_answer(url, users["cookies"][1], users["conversations"][1]))


async def _flood_a_reader(url: str, users: dict) -> tuple[socket.socket, str]:
    """A socket that asks for the answer and then reads nothing, while a page of the same
    user's reads it to its end: the reader, and the page's last frame."""
    path = f"/ws/conversations/{users['conversations'][0]}/"
    headers = {"Origin": url, "Cookie": users["cookies"][0]}
    ws_url = url.replace("http://", "ws://") + path
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url, headers=headers, max_msg_size=0) as page:
            host, port = url.removeprefix("http://").split(":")
            reader = socket.socket()
            reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            reader.connect((host, int(port)))
            key = {"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"}
            upgrade = {"Upgrade": "websocket", "Connection": "Upgrade", **key}
            cookie = users["cookies"][0]
            reader.sendall(
                _head("GET", path, Host=f"{host}:{port}", Origin=url, Cookie=cookie, **upgrade)
            )
            assert reader.recv(4096).startswith(b"HTTP/1.1 101 ")
            reader.sendall(_masked(json.dumps({"message": "A lot.", "client_id": "a"}).encode()))
            async for message in page:
                if 'data-state="done"' in message.data:
                    return reader, message.data
    raise AssertionError("the page's socket closed before the answer was done")


def test_one_browser_past_its_sockets_is_refused_before_the_handshake(bounded):
    url, users, _db = bounded
    host, port = url.removeprefix("http://").split(":")
    path = f"/ws/conversations/{users['conversations'][1]}/"
    key = {"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"}
    head = _head(
        "GET",
        path,
        Host=f"{host}:{port}",
        Origin=url,
        Cookie=users["cookies"][1],
        Upgrade="websocket",
        Connection="Upgrade",
        **key,
    )
    pages = [socket.create_connection((host, int(port))) for _ in range(4)]
    answers = []
    for page in pages:
        page.sendall(head)
        answers.append(page.recv(4096).split(b"\r\n", 1)[0])
    assert answers == [b"HTTP/1.1 101 Switching Protocols"] * 3 + [
        b"HTTP/1.1 429 Too Many Requests"
    ]
    for page in pages:
        page.close()


def _run(coroutine):
    # In a thread of its own: the browser tests' Playwright keeps an event loop in this one.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _masked(payload: bytes) -> bytes:
    """A client's text frame (clients must mask theirs), with a zero mask."""
    if len(payload) < 126:
        head = bytes([0x81, 0x80 | len(payload)])
    else:
        head = bytes([0x81, 0x80 | 126]) + len(payload).to_bytes(2, "big")
    return head + b"\0\0\0\0" + payload


async def _answer(url: str, cookie: str, conversation: int) -> str:
    headers = {"Origin": url, "Cookie": cookie}
    ws_url = url.replace("http://", "ws://") + f"/ws/conversations/{conversation}/"
    text = ""
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url, headers=headers, max_msg_size=0) as ws:
            await ws.send_str(json.dumps({"message": "And you?", "client_id": "b"}))
            async for message in ws:
                text += message.data
                if 'data-state="done"' in message.data:
                    return text
    return text
