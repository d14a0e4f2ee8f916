"""Two Daphne processes, one Redis, one database: a stream started on one is watched, resumed
and stopped from the other."""

import re

from playwright.sync_api import expect

from tests.e2e.conftest import log_in
from tests.helpers.browser import send
from tests.helpers.kimi_stub import Script


def test_two_processes_share_a_stream_and_stop_reaches_across(browser, two_servers, kimi):
    one, two = two_servers
    context = browser.new_context(locale="en-US")
    first = context.new_page()
    log_in(first, one)

    kimi.script = Script(tokens=[f" w{i}" for i in range(80)], delay=0.03)
    send(first, "Count on process one")
    first.wait_for_url(re.compile(r"/c/\d+/$"))
    path = first.url.split(one, 1)[1]
    # The same conversation opened on the other process, mid-answer: the text so far, then
    # live to the end, with not a word lost or doubled.
    second = context.new_page()
    second.goto(two + path)
    expect(second.get_by_role("button", name="Stop")).to_be_visible()
    expect(first.get_by_role("button", name="Stop")).to_be_visible()
    answers = [p.locator('article[data-role="assistant"]') for p in (first, second)]
    for answer in answers:
        expect(answer).to_have_attribute("data-state", "done")
        assert answer.locator(".body").inner_text().split() == [f"w{i}" for i in range(80)]
    assert len(kimi.streams) == 1

    # Stop pressed on process two ends the answer that process one is writing.
    kimi.script = Script(tokens=["Partial", " answer"] + [" more"] * 200, stall_after=2)
    send(first, "Write a lot")
    for answer in (p.locator('article[data-role="assistant"]').last for p in (first, second)):
        expect(answer).to_contain_text("Partial answer")
    second.get_by_role("button", name="Stop").click()
    for page in (first, second):
        last = page.locator('article[data-role="assistant"]').last
        expect(last).to_have_attribute("data-state", "stopped")
        expect(page.get_by_role("button", name="Send", exact=True)).to_be_visible()
    kimi.wait_for(lambda: kimi.streams[-1].closed_early)
    context.close()
