"""What the screenshot tools share: the static files collected as they are now, Kimi's
stand-in, a server with one logged-in user, and Chromium. Every step waits on what the page
shows (Playwright's expect), never on the clock: the machine taking them may be busy."""

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, expect, sync_playwright

from bench.harness import Server, daphne, django_env
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.helpers.kimi_stub import KimiStub

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

# Files are read and answers streamed on a machine that may be busy: wait long enough.
expect.set_options(timeout=120_000)


def words(text: str) -> list[str]:
    """Text as Kimi streams it: a word or a run of spaces at a time."""
    return re.findall(r"\S+|\s+", text)


@contextmanager
def serving(language: str = "en_US") -> Iterator[tuple[Server, KimiStub, Browser]]:
    """The server (DEBUG off, as deployed: it serves the collected static files, so they are
    collected first, or the pictures would show yesterday's CSS), the stub and the browser,
    whose own controls ("Choose Files", a date's placeholder) speak `language` (Debian's
    chromium-l10n has the languages other than English)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = django_env(Path(tmp) / "db.sqlite3", "http://127.0.0.1:9")
        collect = [sys.executable, "manage.py", "collectstatic", "--noinput"]
        subprocess.run(collect, cwd=ROOT, env=env, check=True, capture_output=True)
    stub = KimiStub().start_in_thread()
    try:
        with daphne(stub.base_url.removesuffix("/v1"), users=1) as server, sync_playwright() as p:
            env = {**os.environ, "LANGUAGE": language}
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, env=env)
            yield server, stub, browser
            browser.close()
    finally:
        stub.stop()


def logged_in(browser: Browser, server: Server, **options) -> BrowserContext:
    """A browser context of the server's user (a desktop unless `options` say otherwise)."""
    context = browser.new_context(**{"viewport": DESKTOP, **options})
    name, value = server.cookies[0].split("=", 1)
    context.add_cookies([{"name": name, "value": value, "url": f"http://{server.url}"}])
    return context
