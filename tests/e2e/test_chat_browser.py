"""What a person sees in Chromium: the answer streams in, is kept, and model HTML never runs."""

import re

from playwright.sync_api import Page, expect

from tests.helpers.browser import send
from tests.helpers.kimi_stub import Script

# Records every length the streaming answer's text takes, to see it grow step by step.
WATCH_GROWTH = """() => {
  window.lengths = [];
  new MutationObserver(() => {
    const body = document.querySelector('article[data-role="assistant"] .body');
    if (body) window.lengths.push(body.textContent.length);
  }).observe(document.getElementById('messages'),
             {subtree: true, childList: true, characterData: true});
}"""


def test_an_answer_streams_in_and_is_still_there_after_a_reload(page: Page, kimi):
    kimi.script = Script(tokens=[f"word{i} " for i in range(40)], delay=0.02)
    page.evaluate(WATCH_GROWTH)
    send(page, "Hello Kimi")

    answer = page.locator('article[data-role="assistant"]')
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    expect(answer).to_have_attribute("data-state", "done")
    expect(answer).to_contain_text("word0 word1 word2")
    expect(answer).to_contain_text("word39")
    full = len("".join(kimi.script.tokens))
    growth = {n for n in page.evaluate("window.lengths") if 0 < n < full}
    assert len(growth) >= 3, growth
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    expect(page.get_by_role("textbox", name="Message")).to_have_value("")
    expect(page).to_have_url(re.compile(r"/c/\d+/$"))

    page.reload()
    expect(page.locator('article[data-role="user"]')).to_contain_text("Hello Kimi")
    expect(answer).to_have_attribute("data-state", "done")
    expect(answer).to_contain_text("word39")
    expect(page.get_by_role("navigation", name="Conversations")).to_contain_text("Hello Kimi")


def test_model_html_is_shown_as_text_and_never_runs(page: Page, kimi):
    kimi.script = Script(
        tokens=["<script>window.pwned = 1</script>", ' <img src="x" onerror="window.pwned = 2">'],
        delay=0.02,
    )
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    send(page, "Show me HTML")
    answer = page.locator('article[data-role="assistant"]')
    expect(answer).to_have_attribute("data-state", "done")
    expect(answer).to_contain_text("<script>window.pwned = 1</script>")
    expect(answer).to_contain_text('<img src="x" onerror="window.pwned = 2">')
    assert page.evaluate("window.pwned") is None
    assert answer.locator("script, img").count() == 0
    page.reload()
    expect(answer).to_contain_text("<script>window.pwned = 1</script>")
    assert page.evaluate("window.pwned") is None and dialogs == []


def test_stop_keeps_the_partial_answer(page: Page, kimi):
    kimi.script = Script(tokens=["Half", " of", " it"] + [" more"] * 50, stall_after=3)
    send(page, "Tell me a long story")
    answer = page.locator('article[data-role="assistant"]')
    expect(answer).to_contain_text("Half of it")
    page.get_by_role("button", name="Stop").click()
    expect(answer).to_have_attribute("data-state", "stopped")
    expect(answer).to_contain_text("Half of it")
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    kimi.wait_for(lambda: kimi.requests[-1].closed_early)


def test_reloading_mid_answer_resumes_it_without_losing_a_word(page: Page, kimi):
    kimi.script = Script(tokens=[f" w{i}" for i in range(60)], delay=0.03)
    send(page, "Count for me")
    answer = page.locator('article[data-role="assistant"]')
    expect(answer).to_contain_text("w5")
    page.reload()
    expect(answer).to_have_attribute("data-state", "done")
    assert answer.locator(".body").inner_text().split() == [f"w{i}" for i in range(60)]
    assert len(kimi.requests) == 1


def test_shift_enter_makes_a_new_line_and_enter_sends(page: Page, kimi):
    box = page.get_by_role("textbox", name="Message")
    box.type("first line")
    box.press("Shift+Enter")
    box.type("second line")
    expect(box).to_have_value("first line\nsecond line")
    assert kimi.requests == []
    box.press("Enter")
    expect(page.locator('article[data-role="assistant"]')).to_have_attribute("data-state", "done")
    assert kimi.requests[0].body["messages"][-1]["content"] == "first line\nsecond line"


def test_a_refused_message_stays_in_the_composer(page: Page, kimi):
    page.locator("summary", has_text="Settings").click()
    page.get_by_label("Stop sequences").fill("a\nb\nc\nd\ne\nf")
    send(page, "Keep me")
    expect(page.get_by_role("alert").filter(has_text="at most 5 stop sequences")).to_be_visible()
    expect(page.get_by_role("textbox", name="Message")).to_have_value("Keep me")
    assert kimi.requests == []
