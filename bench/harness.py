"""What the benchmarks share: a Kimi stub process, a Daphne process, logged-in websockets."""

import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
TOKEN_TEXT = re.compile(r'hx-swap-oob="beforeend:#msg-\d+-body">(.*?)</div>', re.S)
THOUGHT_TEXT = re.compile(r'hx-swap-oob="beforeend:#msg-\d+-thinking">(.*?)</div>', re.S)
# An answer shown whole while it streams: after its first words, only a takeover does that.
REWOUND = 'data-role="assistant" data-state="streaming"'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_line(process: subprocess.Popen[str], marker: str) -> None:
    output = process.stdout
    assert output is not None, "start the process with stdout=subprocess.PIPE"
    for line in output:
        if marker in line:
            # Keep reading, or a full pipe would block the process.
            threading.Thread(target=output.read, daemon=True).start()
            return
    raise RuntimeError(f"process exited before printing {marker!r}")


@contextmanager
def stub(*, tokens: int, rate: float, reasoning: int = 0):
    """The Kimi stub in a process of its own: `reasoning` thoughts (for models that think),
    then `tokens` words, at `rate` a second."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-u",
            "-c",
            "import tests.helpers.kimi_stub as s, asyncio, sys; "
            "stub = s.KimiStub('127.0.0.1', int(sys.argv[1])); "
            "stub.script = s.Script(tokens=[f' t{i}' for i in range(int(sys.argv[2]))], "
            "delay=1 / float(sys.argv[3]), "
            "reasoning=[f' r{i}' for i in range(int(sys.argv[4]))]); print('ready', flush=True); "
            "asyncio.run(stub.serve_forever())",
            str(port),
            str(tokens),
            str(rate),
            str(reasoning),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    _wait_for_line(process, "ready")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait()


async def stub_stats(stub_url: str) -> dict:
    async with aiohttp.ClientSession() as s, s.get(stub_url + "/_stats") as r:
        return await r.json()


def django_env(db_path: Path, stub_url: str, model: str = "kimi-k2.6") -> dict:
    return {
        **os.environ,
        "BENCH_MODEL": model,
        "DATABASE_URL": f"sqlite:///{db_path}",
        "MOONSHOT_API_KEY": "sk-test",
        "MOONSHOT_BASE_URL": stub_url + "/v1",
        "KIMI_MAX_RETRIES": "0",
        # The benchmarks measure streaming, not the per-user limits or the title request.
        "USER_MAX_CONCURRENT": "100000",
        "USER_MESSAGES_PER_MINUTE": "100000",
        "KIMI_AUTO_TITLE": "false",
        "SECRET_KEY": "bench",
        "DEBUG": "false",
        "PYTHONUNBUFFERED": "1",
    }


@dataclass
class Server:
    url: str
    pid: int
    cookies: list[str] = field(default_factory=list)  # one session per user
    conversations: list[int] = field(default_factory=list)
    database: Path | None = None  # its SQLite file


@contextmanager
def daphne(
    stub_url: str,
    *,
    users: int,
    app: str = "kimichat.asgi:application",
    model: str = "kimi-k2.6",
):
    """Daphne serving `app` on a fresh SQLite database, with `users` users, each logged in
    with one conversation with `model`."""
    with tempfile.TemporaryDirectory() as tmp:
        env = django_env(Path(tmp) / "db.sqlite3", stub_url, model)
        setup = subprocess.run(
            [sys.executable, "-m", "bench.seed", str(users)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        seeded = json.loads(setup.stdout.strip().splitlines()[-1])
        port = free_port()
        # Listening as kimichat.serve does: Twisted's default queue (50) overflows when
        # hundreds of sockets connect at once.
        listen = f"tcp:port={port}:interface=127.0.0.1:backlog=1024"
        command = ["-m", "daphne", "-e", listen, app]
        if app == "kimichat.asgi:application":
            command = ["-m", "kimichat.serve"]  # what `make run` starts
            env.update(HOST="127.0.0.1", PORT=str(port))
        process = subprocess.Popen(
            [sys.executable, *command],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        _wait_for_line(process, "Listening on TCP address")
        try:
            yield Server(
                f"127.0.0.1:{port}",
                process.pid,
                seeded["cookies"],
                seeded["conversations"],
                Path(tmp) / "db.sqlite3",
            )
        finally:
            process.terminate()
            process.wait()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu() -> float:
    """The CPU seconds the default database connection's PostgreSQL backend has used, when
    the server runs on this machine (0 otherwise, and on SQLite, whose work is this
    process's own)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return 0.0
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        return cpu_seconds(pid)
    except OSError:
        return 0.0


def peak_rss_mb(pid: int) -> float:
    return _status_mb(pid, "VmHWM:")


def rss_mb(pid: int) -> float:
    return _status_mb(pid, "VmRSS:")


def _status_mb(pid: int, name: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Stream:
    marker: str
    sent_at: float = 0.0
    first_token_at: float | None = None
    first_thought_at: float | None = None
    last_token_at: float | None = None
    max_gap: float = 0.0  # the longest wait between two token frames (s)
    # Each token frame: when it came, and how many tokens it held.
    arrivals: list[tuple[float, int]] = field(default_factory=list)
    text: str = ""
    # Times the answer was shown again as saved mid-stream (taken over: its lease lapsed),
    # after which the words since that save come again.
    rewinds: int = 0
    done: bool = False
    error: str = ""


async def run_stream(
    session: aiohttp.ClientSession,
    server: Server,
    index: int,
    marker: str,
    start: asyncio.Event,
    path: str = "/ws/conversations/{id}/",
) -> Stream:
    stream = Stream(marker)
    url = f"ws://{server.url}" + path.format(id=server.conversations[index])
    headers = {"Origin": f"http://{server.url}", "Cookie": server.cookies[index]}
    async with session.ws_connect(url, headers=headers, max_msg_size=0) as ws:
        await start.wait()
        stream.sent_at = time.monotonic()
        await ws.send_str(json.dumps({"message": marker, "client_id": marker}))
        async for msg in ws:
            now = time.monotonic()
            frame = msg.data
            if stream.first_thought_at is None and THOUGHT_TEXT.search(frame):
                stream.first_thought_at = now
            if stream.first_token_at is not None and REWOUND in frame:
                stream.rewinds += 1
            pieces = TOKEN_TEXT.findall(frame)
            if pieces:
                if stream.last_token_at is None:
                    stream.first_token_at = now
                else:
                    stream.max_gap = max(stream.max_gap, now - stream.last_token_at)
                stream.last_token_at = now
                text = "".join(pieces)
                stream.arrivals.append((now, text.count(" t")))
                stream.text += text
            if 'data-state="error"' in frame:
                stream.error = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", frame)).strip()[-200:]
            if (
                'data-state="done"' in frame
                or 'data-state="error"' in frame
                or "[bare-done]" in frame
            ):
                stream.done = True
                break
    return stream


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
