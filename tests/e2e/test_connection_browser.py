"""When Kimi or the server stops answering: a stalled answer keeps its words and can be
continued, and the page says while it is reconnecting to a server that went away."""

import os
import signal

from playwright.sync_api import expect

from tests.e2e.conftest import _free_port, _prepare, log_in, serving
from tests.helpers.browser import answer_done, send
from tests.helpers.kimi_stub import Script


def test_a_stalled_answer_keeps_its_words_and_can_be_continued(browser, tmp_path, kimi):
    env = _prepare(tmp_path, kimi, KIMI_STREAM_TIMEOUT="2")
    with serving(env, tmp_path / "daphne.log") as (_, url):
        context = browser.new_context(base_url=url, locale="en-US")
        page = context.new_page()
        log_in(page, url)
        kimi.script = Script(
            tokens=["Half", " of", " it"] + [" more"] * 50, stall_after=3, reasoning=[]
        )
        send(page, "Tell me a long story")
        answer = page.locator('article[data-role="assistant"]')
        expect(answer).to_have_attribute("data-state", "error")
        expect(answer.get_by_role("alert")).to_contain_text("Kimi did not answer in time.")
        expect(answer.locator(".body")).to_have_text("Half of it")
        expect(answer.get_by_role("button", name="Retry")).to_be_visible()

        kimi.script = Script(tokens=[" and the end."], reasoning=[])
        answer.get_by_role("button", name="Continue").click()
        expect(answer).to_have_attribute("data-state", "done")
        expect(answer.locator(".body")).to_have_text("Half of it and the end.")
        assert kimi.streams[-1].body["messages"][-1]["partial"] is True
        context.close()


def test_the_page_says_it_is_reconnecting_while_the_server_is_down(browser, tmp_path, kimi):
    env = _prepare(tmp_path, kimi)
    port = _free_port()
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    connection = page.locator("#connection")
    with serving(env, tmp_path / "one.log", port) as (process, url):
        log_in(page, url)
        send(page, "Before the restart")
        answer_done(page, "Hello from the Kimi stub.")
        expect(connection).to_be_hidden()
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        expect(connection).to_have_text("The connection to the server was lost. Reconnecting…")
        expect(connection).to_have_attribute("role", "status")
    with serving(env, tmp_path / "two.log", port):
        # Tries are at most 10 s apart: the page is back soon after the server is.
        expect(connection).to_have_text("Connected again.", timeout=30_000)
        send(page, "After the restart")
        expect(page.locator('article[data-role="assistant"]')).to_have_count(2)
        answer_done(page, "Hello from the Kimi stub.")
    context.close()
