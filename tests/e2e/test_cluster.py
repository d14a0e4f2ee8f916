"""The cluster as users meet it: Chromium through nginx (deploy/nginx/kimichat-locations.conf)
in front of three `kimichat.serve` processes, a db_worker, the database, Redis and S3 (see
tests/e2e/cluster.py). Chat, an upload referred to with `@`, Stop from a second tab; then a
rolling restart of every process while answers stream, `kill -9` of the process writing an
answer, and Redis stopped for a few seconds: after each, every answer ends whole, saved once,
with its tokens in the ledger, and the page shows no error it cannot recover from.

`make test-cluster` runs it (installing Debian's nginx when missing); CI runs that."""

import os
import re
import signal
import sqlite3
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer
from playwright.sync_api import Page, expect

from tests.e2e.cluster import Cluster, Missing, Redis, cluster_env, database, prepare
from tests.e2e.conftest import log_in
from tests.helpers import documents
from tests.helpers.browser import send
from tests.helpers.kimi_stub import Script

WORDS = [f" w{i}" for i in range(50)]


def _need(error: Missing) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{error} (CI must run the cluster test)")
    pytest.skip(str(error))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, kimi_stub):
    tmp = tmp_path_factory.mktemp("cluster")
    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    s3.start()
    host, port = s3.get_host_and_port()
    try:
        redis = Redis(tmp)
        redis.start()
    except Missing as e:
        s3.stop()
        _need(e)
    try:
        with database(tmp) as database_url:
            env = cluster_env(
                tmp,
                database_url=database_url,
                redis_url=redis.url,
                kimi_url=kimi_stub.base_url,
                s3=f"http://{host}:{port}",
            )
            prepare(env)
            try:
                running = Cluster(tmp, env, size=3)
            except Missing as e:
                _need(e)
            running.redis = redis
            running.start()
            try:
                yield running
            finally:
                running.stop()
    finally:
        redis.stop()
        s3.stop()


def query(cluster: Cluster, sql: str) -> list[tuple]:
    """Read the cluster's database as an operator would."""
    url = cluster.env["DATABASE_URL"]
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            return db.execute(sql).fetchall()
    import psycopg

    with psycopg.connect(url) as db:
        return db.execute(sql).fetchall()


def writer_pid(cluster: Cluster) -> int:
    """The process writing the answer being written (its lease names it: host:pid:nonce)."""
    (owner,) = query(
        cluster, "SELECT lease_owner FROM conversations_message WHERE state = 'streaming'"
    )[0]
    return int(owner.split(":")[-2])


def whole(page: Page, count: int) -> None:
    """The page shows `count` answers, every one done and whole."""
    answers = page.locator('article[data-role="assistant"]')
    expect(answers).to_have_count(count)
    for i in range(count):
        expect(answers.nth(i)).to_have_attribute("data-state", "done", timeout=60_000)
        assert answers.nth(i).locator(".body").inner_text().split() == [w.strip() for w in WORDS]


def last_id(cluster: Cluster) -> int:
    ((pk,),) = query(cluster, "SELECT COALESCE(MAX(id), 0) FROM conversations_message")
    return pk


def saved_once_and_counted(cluster: Cluster, after: int, answers: int, requests: int) -> None:
    """The answers since message `after`: each one row, done and whole, with its tokens;
    and the ledger counts every request made to Kimi."""
    rows = query(
        cluster,
        "SELECT state, content, completion_tokens FROM conversations_message "
        f"WHERE role = 'assistant' AND id > {after} ORDER BY id",
    )
    assert len(rows) == answers  # one row per answer: nothing was written twice
    assert all(state == "done" and content == "".join(WORDS) for state, content, _ in rows)
    assert all(tokens for _, _, tokens in rows)
    ((counted,),) = query(cluster, "SELECT SUM(messages) FROM accounts_usage")
    assert counted == requests


@pytest.fixture
def pages(browser, cluster, kimi):
    context = browser.new_context(base_url=cluster.url, locale="en-US")
    first = context.new_page()
    log_in(first, cluster.url)
    yield first, context
    context.close()


def test_chat_upload_at_reference_and_stop_from_another_tab(pages, kimi, tmp_path: Path):
    page, context = pages
    kimi.script = Script(tokens=["Revenue", " grew", " 12%."])
    report = tmp_path / "report-q3.docx"
    report.write_bytes(documents.docx_bytes())
    page.get_by_label("Attach files").set_input_files(str(report))
    attached = page.get_by_role("group", name="Attached files")
    expect(attached.get_by_role("status")).to_contain_text("Ready")  # read by the db_worker
    send(page, "What does @report-q3.docx say about revenue?")
    answer = page.locator('article[data-role="assistant"]').last
    expect(answer).to_have_attribute("data-state", "done")
    expect(answer).to_contain_text("Revenue grew 12%.")
    assert any("report-q3.docx" in str(m["content"]) for m in kimi.streams[-1].body["messages"])

    kimi.script = Script(tokens=["Partial", " answer"] + [" more"] * 100, stall_after=2)
    send(page, "Write a lot")
    other = context.new_page()
    other.goto(page.url)
    for tab in (page, other):
        expect(tab.locator('article[data-role="assistant"]').last).to_contain_text("Partial")
    other.get_by_role("button", name="Stop").click()
    for tab in (page, other):
        expect(tab.locator('article[data-role="assistant"]').last).to_have_attribute(
            "data-state", "stopped"
        )
    kimi.wait_for(lambda: kimi.streams[-1].closed_early)


def test_a_rolling_restart_of_every_process_loses_no_answer(pages, cluster, kimi):
    page, _ = pages
    kimi.script = Script(tokens=WORDS, delay=0.04)
    before, after, counted = len(kimi.streams), last_id(cluster), _requests(cluster)
    for index in range(len(cluster.apps)):
        send(page, f"Count, while process {index} restarts")
        kimi.wait_for(lambda n=index: len(kimi.streams) == before + n + 1)
        assert cluster.stop_app(index) == 0  # SIGTERM: it finishes or hands over, then exits
        cluster.start_app(index)
        whole(page, index + 1)
    expect(page.get_by_role("textbox", name="Message")).to_be_enabled()
    assert not page.locator("#composer-error").inner_text()
    # A SIGTERM within the grace finishes the answer; none is handed over, none asked twice.
    assert len(kimi.streams) == before + 3
    saved_once_and_counted(cluster, after, 3, requests=counted + 3)


def test_kill_9_of_the_process_writing_an_answer_and_redis_stopping(pages, cluster, kimi):
    page, _ = pages
    kimi.script = Script(tokens=WORDS, delay=0.04)
    after, counted = last_id(cluster), _requests(cluster)
    send(page, "Count, while your process dies")
    page.wait_for_url(re.compile(r"/c/\d+/$"))
    # Past the first save (about a second in), so the saved text is gone on from.
    expect(page.locator('article[data-role="assistant"]').last).to_contain_text("w30")
    index = cluster.index_of(writer_pid(cluster))
    assert cluster.stop_app(index, signal.SIGKILL) == -signal.SIGKILL
    whole(page, 1)  # another process took it over and went on in partial mode
    assert kimi.streams[-1].body["messages"][-1]["partial"] is True
    cluster.start_app(index)

    send(page, "Count, while Redis stops")
    streams = len(kimi.streams) + 1
    kimi.wait_for(lambda: len(kimi.streams) == streams and kimi.streams[-1].first_chunk_at)
    assert cluster.redis is not None
    cluster.redis.stop()
    # Away while Kimi sends most of the answer (about a second and a half).
    kimi.wait_for(lambda: _streamed_for(kimi.streams[-1]) > 1.5, timeout=20)
    cluster.redis.start()
    whole(page, 2)
    # The dead writer's request (by estimate), the resumed one, and the one during the outage.
    saved_once_and_counted(cluster, after, 2, requests=counted + 3)


def _requests(cluster: Cluster) -> int:
    ((counted,),) = query(cluster, "SELECT COALESCE(SUM(messages), 0) FROM accounts_usage")
    return counted


def _streamed_for(request) -> float:
    if request.first_chunk_at is None or request.last_chunk_at is None:
        return 0.0
    return request.last_chunk_at - request.first_chunk_at
