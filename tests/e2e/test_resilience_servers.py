"""Real `kimichat.serve` processes stopped as an operator (or a crash) stops them, with a
browser watching: SIGTERM lets the answer finish before the process exits; after `kill -9`
another process takes the answer over and the page shows it whole."""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import _free_port, _prepare, _redis_url, log_in, serving
from tests.helpers.browser import send
from tests.helpers.kimi_stub import Script

WORDS = [f" w{i}" for i in range(60)]


@pytest.fixture
def cluster(tmp_path, kimi_stub):
    """Two processes on one database and one Redis, with short leases."""
    env = _prepare(
        tmp_path, kimi_stub, REDIS_URL=_redis_url(), ANSWER_LEASE="4", SHUTDOWN_GRACE="20"
    )
    with (
        serving(env, tmp_path / "one.log") as one,
        serving(env, tmp_path / "two.log") as two,
    ):
        yield one, two


def words(page) -> list[str]:
    return page.locator('article[data-role="assistant"]').last.locator(".body").inner_text().split()


def test_sigterm_lets_the_running_answer_finish_before_the_process_exits(browser, cluster, kimi):
    (one, one_url), (_, two_url) = cluster
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    log_in(page, one_url)
    kimi.script = Script(tokens=WORDS, delay=0.05)
    send(page, "Count slowly")
    page.wait_for_url(re.compile(r"/c/\d+/$"))
    expect(page.locator('article[data-role="assistant"]').last).to_contain_text("w5")

    one.send_signal(signal.SIGTERM)
    assert one.wait(30) == 0  # it waited for the answer, then left
    assert len(kimi.streams) == 1 and not kimi.streams[0].closed_early
    # The answer is whole, saved once, as any process shows it.
    watcher = context.new_page()
    watcher.goto(two_url + page.url.split(one_url, 1)[1])
    answer = watcher.locator('article[data-role="assistant"]')
    expect(answer).to_have_attribute("data-state", "done")
    assert words(watcher) == [w.strip() for w in WORDS]
    context.close()


def test_after_kill_9_another_process_goes_on_with_the_answer_on_the_page(browser, cluster, kimi):
    (one, one_url), (_, two_url) = cluster
    context = browser.new_context(locale="en-US")
    writer = context.new_page()
    log_in(writer, one_url)
    kimi.script = Script(tokens=WORDS, delay=0.05)
    send(writer, "Count slowly")
    writer.wait_for_url(re.compile(r"/c/\d+/$"))
    watcher = context.new_page()
    watcher.goto(two_url + writer.url.split(one_url, 1)[1])
    last = watcher.locator('article[data-role="assistant"]').last
    # Far enough in that the answer has been saved (every second) before the crash.
    expect(last).to_contain_text("w40")

    os.kill(one.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    one.wait(10)
    expect(last).to_have_attribute("data-state", "done")
    took = time.monotonic() - killed_at
    # One answer, whole: what was saved, then the rest from Kimi's partial mode.
    assert words(watcher) == [w.strip() for w in WORDS]
    resumed = kimi.streams[-1].body["messages"][-1]
    # What was saved goes as the start of Kimi's reply (partial mode); on a machine so busy
    # that nothing was saved yet, the answer starts again (tests/test_resilience.py checks
    # the partial request itself).
    if resumed.get("partial"):
        assert resumed["content"].startswith(" w0 w1")
    assert len(kimi.streams) == 2
    print(f"kill -9 to the answer done on the other process: {took:.1f} s")
    context.close()


class Postgres:
    """A PostgreSQL server of the test's own (initdb in a temporary folder, as the
    `postgres` user when the tests run as root), stopped and started again by the test."""

    def __init__(self) -> None:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        if not found:
            if os.environ.get("CI"):
                pytest.fail("needs PostgreSQL's pg_ctl (/usr/lib/postgresql/*/bin)")
            pytest.skip("needs PostgreSQL's server binaries (/usr/lib/postgresql/*/bin)")
        self.bin = found[-1].parent
        # Outside pytest's folders, which only root may enter.
        self.root = Path(tempfile.mkdtemp(prefix="kimichat-pg-"))
        self.root.chmod(0o777)
        self.data, self.port = self.root / "data", _free_port()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/kimichat"

    def _run(self, tool: str, *args: str) -> None:
        # Not captured: the server pg_ctl starts would hold the pipes open. Its log is a file.
        command = [*self.as_user, str(self.bin / tool), *args]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, timeout=60)

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data}"
        log = str(self.root / "postgres.log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def test_an_answer_streaming_while_postgresql_restarts_is_saved_whole(
    browser, tmp_path, kimi_stub, kimi
):
    import psycopg

    postgres = Postgres()
    postgres.start()
    try:
        with psycopg.connect(postgres.url.replace("/kimichat", "/postgres"), autocommit=True) as db:
            db.execute("CREATE DATABASE kimichat")
        env = _prepare(tmp_path, kimi_stub, DATABASE_URL=postgres.url)
        with serving(env, tmp_path / "one.log") as (_, url):
            context = browser.new_context(locale="en-US")
            page = context.new_page()
            log_in(page, url)
            kimi.script = Script(tokens=WORDS, delay=0.05)
            send(page, "Count slowly")
            page.wait_for_url(re.compile(r"/c/\d+/$"))
            expect(page.locator('article[data-role="assistant"]').last).to_contain_text("w5")
            postgres.stop()
            # Down while Kimi sends the rest of the answer: saves fail, the stream goes on.
            kimi.wait_for(lambda: _streamed_for(kimi.streams[-1]) > 2.5, timeout=20)
            postgres.start()
            answer = page.locator('article[data-role="assistant"]').last
            expect(answer).to_have_attribute("data-state", "done")
            assert words(page) == [w.strip() for w in WORDS]
            page.reload()  # as saved
            expect(answer).to_have_attribute("data-state", "done")
            assert words(page) == [w.strip() for w in WORDS]
            context.close()
    finally:
        postgres.stop()
        postgres.remove()


def _streamed_for(request) -> float:
    if request.first_chunk_at is None or request.last_chunk_at is None:
        return 0.0
    return request.last_chunk_at - request.first_chunk_at
