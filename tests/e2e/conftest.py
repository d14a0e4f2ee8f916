"""A real Daphne process (with its own SQLite file) and Debian's Chromium driven by Playwright."""

import os
import shutil
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.e2e.cluster import prepare

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# Waits end on the event; the long limit is for a busy 2-core machine, where Chromium, the
# server and the stub share the cores.
expect.set_options(timeout=20_000)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prepare(tmp: Path, kimi_stub, **extra: str) -> dict:
    """The environment of a server process, with its database migrated and repaired (as
    `make run` does before it serves) and alice in it."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
        "MEDIA_ROOT": str(tmp / "media"),
        "MOONSHOT_API_KEY": "sk-test",
        "MOONSHOT_BASE_URL": kimi_stub.base_url,
        "KIMI_MAX_RETRIES": "0",
        "KIMI_AUTO_TITLE": "false",
        "SECRET_KEY": "e2e-secret",
        "DEBUG": "false",
        "HOST": "127.0.0.1",
        "PYTHONUNBUFFERED": "1",
        # Tests sign people up and use their accounts at once (approval is tested on its own).
        "SIGNUP": "open",
        # alice answers in most browser tests, one after another on one server: the per-user
        # limit (tested on its own) would refuse her partway through the suite.
        "USER_MESSAGES_PER_MINUTE": "1000",
        # A lease renewal late on a busy 2-core machine would pause a live answer (its writer
        # holds its text back until the renewal); only the crash tests (which set their own)
        # want short leases.
        "ANSWER_LEASE": "15",
        **extra,
    }
    prepare(env)
    return env


@contextmanager
def serving(env: dict, log: Path, port: int | None = None):
    """`python -m kimichat.serve` on a free port (or `port`, to start it again where it was);
    yields (its process, its base URL). Its output goes to `log` (read it when a browser
    test fails). Stopped on the way out, unless a test stopped it (or killed it) already."""
    port = port or _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "kimichat.serve"],
        cwd=ROOT,
        env={**env, "PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    # Wait for Daphne to say it listens, not for a fixed time.
    output = []
    for line in process.stdout:
        output.append(line)
        if "Listening on TCP address" in line:
            # Keep reading, or a full pipe would block the server.
            out = log.open("w", buffering=1)
            threading.Thread(target=out.writelines, args=(process.stdout,), daemon=True).start()
            break
    else:
        pytest.fail("kimichat.serve did not start:\n" + "".join(output))
    try:
        yield process, f"http://127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


@contextmanager
def _daphne(env: dict, log: Path):
    """`serving`, for the tests that need only its URL."""
    with serving(env, log) as (_, url):
        yield url


@pytest.fixture(scope="session")
def server(tmp_path_factory, kimi_stub):
    tmp = tmp_path_factory.mktemp("e2e")
    env = _prepare(tmp, kimi_stub)
    with _daphne(env, tmp / "daphne.log") as url:
        yield url


def _redis_url() -> str:
    """REDIS_URL, or Redis on its usual loopback port; a skip naming it where there is none
    (a failure in CI, which must run this)."""
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    host, _, port = url.split("://", 1)[1].split("/", 1)[0].rpartition("@")[2].partition(":")
    try:
        socket.create_connection((host, int(port or 6379)), timeout=2).close()
    except OSError:
        if os.environ.get("CI"):
            pytest.fail(f"needs Redis at {url} (REDIS_URL); CI must run the multi-process test")
        pytest.skip(f"needs Redis (set REDIS_URL; nothing answers at {url})")
    return url


@pytest.fixture(scope="session")
def two_servers(tmp_path_factory, kimi_stub):
    """Two Daphne processes sharing one database and one Redis, as when scaled out."""
    tmp = tmp_path_factory.mktemp("e2e-two")
    env = _prepare(tmp, kimi_stub, REDIS_URL=_redis_url())
    with _daphne(env, tmp / "one.log") as one, _daphne(env, tmp / "two.log") as two:
        yield one, two


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
        pytest.skip(f"needs Debian's chromium at {CHROMIUM} (`apt-get install chromium`)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def log_in(page: Page, base_url: str) -> None:
    page.goto(base_url + "/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("password")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(base_url + "/")


@pytest.fixture
def page(browser, server, kimi) -> Page:
    context = browser.new_context(base_url=server, locale="en-US")
    page = context.new_page()
    log_in(page, server)
    yield page
    context.close()
