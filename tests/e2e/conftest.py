"""A real Daphne process (with its own SQLite file) and Debian's Chromium driven by Playwright."""

import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server(tmp_path_factory, kimi_stub):
    tmp = tmp_path_factory.mktemp("e2e")
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
        "MOONSHOT_API_KEY": "sk-test",
        "MOONSHOT_BASE_URL": kimi_stub.base_url,
        "KIMI_MAX_RETRIES": "0",
        "SECRET_KEY": "e2e-secret",
        "DEBUG": "false",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DJANGO_SUPERUSER_USERNAME": "alice",
        "DJANGO_SUPERUSER_PASSWORD": "password",
        "DJANGO_SUPERUSER_EMAIL": "alice@example.com",
        "PYTHONUNBUFFERED": "1",
    }
    manage = [sys.executable, "manage.py"]
    for command in (
        ["migrate", "-v0"],
        ["collectstatic", "--noinput", "-v0"],
        ["createsuperuser", "--noinput"],
    ):
        subprocess.run(manage + command, cwd=ROOT, env=env, check=True, capture_output=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "kimichat.serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # Wait for Daphne to say it listens, not for a fixed time.
    output = []
    for line in process.stdout:
        output.append(line)
        if "Listening on TCP address" in line:
            # Keep reading, or a full pipe would block the server.
            threading.Thread(target=process.stdout.read, daemon=True).start()
            break
    else:
        pytest.fail("Daphne did not start:\n" + "".join(output))
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(10)


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


@pytest.fixture
def page(browser, server, kimi) -> Page:
    context = browser.new_context(base_url=server, locale="en-US")
    page = context.new_page()
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("password")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(server + "/")
    yield page
    context.close()
