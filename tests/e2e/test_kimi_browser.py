"""Kimi's own features in Chromium: the Thinking section fills live and folds, the switches,
web search, and Continue."""

import re

from playwright.sync_api import Page, expect

from tests.helpers.browser import send
from tests.helpers.kimi_stub import Script

# Records every text the answer's status line shows, however briefly.
WATCH_STATUS = """() => {
  window.statuses = [];
  new MutationObserver(() => {
    const status = document.querySelector('article[data-role="assistant"] .status');
    if (status && status.textContent) window.statuses.push(status.textContent);
  }).observe(document.getElementById('messages'),
             {subtree: true, childList: true, characterData: true});
}"""


def test_kimi_thinks_live_then_the_thinking_folds_and_stays_folded(page: Page, kimi):
    kimi.script = Script(
        reasoning=[f"step {i}. " for i in range(30)], tokens=["The", " answer."], delay=0.05
    )
    expect(page.get_by_role("checkbox", name="Thinking")).to_be_checked()
    send(page, "Think hard")

    answer = page.locator('article[data-role="assistant"]')
    thinking = answer.get_by_role("group", name="Thinking")
    # While Kimi thinks: the section is open and fills, before any word of the answer.
    expect(thinking).to_contain_text("step 3.")
    expect(thinking).to_have_attribute("open", "")
    expect(thinking).to_contain_text("Thinking…")
    assert answer.locator(".body").inner_text() == ""
    # The answer begins: it folds to one line.
    expect(answer).to_have_attribute("data-state", "done")
    expect(thinking).not_to_have_attribute("open", "")
    expect(thinking.locator("summary")).to_have_text(re.compile(r"Thought for \d+ s"))
    expect(answer.locator(".body")).to_have_text("The answer.")

    page.reload()
    expect(thinking).not_to_have_attribute("open", "")
    thinking.locator("summary").click()
    expect(thinking.locator(".thinking-text")).to_be_visible()
    expect(thinking).to_contain_text("step 29.")


def test_the_thinking_switch_follows_the_model(page: Page, kimi):
    switch = page.get_by_role("checkbox", name="Thinking")
    page.get_by_label("Model").select_option("kimi-k2.6")
    switch.uncheck()
    send(page, "No thinking please")
    answer = page.locator('article[data-role="assistant"]')
    expect(answer).to_have_attribute("data-state", "done")
    expect(answer.get_by_role("group", name="Thinking")).to_be_hidden()
    assert kimi.streams[-1].body["thinking"] == {"type": "disabled"}

    # kimi-k3 always thinks: the switch shows it on, fixed; back on k2.6 the choice stays.
    page.get_by_label("Model").select_option("kimi-k3")
    expect(switch).to_be_checked()
    expect(switch).to_have_attribute("aria-disabled", "true")
    page.get_by_label("Model").select_option("kimi-k2.6")
    expect(switch).not_to_be_checked()
    page.reload()
    expect(page.get_by_role("checkbox", name="Thinking")).not_to_be_checked()


def test_web_search_says_what_it_does_then_answers(page: Page, kimi):
    kimi.script = Script(searches=["kimi news"], tokens=["Here is", " what I found."], delay=0.05)
    page.get_by_role("checkbox", name="Web search").check()
    page.evaluate(WATCH_STATUS)
    send(page, "What is new at Moonshot?")

    answer = page.locator('article[data-role="assistant"]')
    expect(answer).to_have_attribute("data-state", "done")
    expect(answer.locator(".body")).to_have_text("Here is what I found.")
    expect(answer).to_contain_text("1 web search")
    assert "Searching: kimi news" in page.evaluate("window.statuses")
    assert kimi.streams[-2].body["tools"][0]["function"]["name"] == "web_search"


def test_continue_goes_on_with_a_cut_answer(page: Page, kimi):
    page.get_by_label("Model").select_option("kimi-k2.6")
    kimi.script = Script(tokens=["Once upon", " a time"], finish_reason="length")
    send(page, "Tell me a story")
    answer = page.locator('article[data-role="assistant"]')
    expect(answer).to_have_attribute("data-state", "done")

    kimi.script = Script(tokens=[", the end."], delay=0.02)
    answer.get_by_role("button", name="Continue").click()
    expect(answer.locator(".body")).to_have_text("Once upon a time, the end.")
    expect(answer).to_have_attribute("data-state", "done")
    expect(answer.get_by_role("button", name="Continue")).to_have_count(0)
    assert kimi.streams[-1].body["messages"][-1]["partial"] is True
    expect(page.locator('article[data-role="assistant"]')).to_have_count(1)


def test_after_continue_the_thinking_still_says_how_long_it_took(page: Page, kimi):
    kimi.script = Script(
        reasoning=["Let me", " think."], tokens=["Once upon"], finish_reason="length"
    )
    send(page, "Think, then tell me a story")
    answer = page.locator('article[data-role="assistant"]')
    expect(answer).to_have_attribute("data-state", "done")
    summary = answer.get_by_role("group", name="Thinking").locator("summary")
    expect(summary).to_have_text(re.compile(r"Thought for \d+ s"))

    kimi.script = Script(reasoning=[], tokens=[" a time."])
    answer.get_by_role("button", name="Continue").click()
    expect(answer.locator(".body")).to_have_text("Once upon a time.")
    expect(answer).to_have_attribute("data-state", "done")
    expect(summary).to_have_text(re.compile(r"Thought for \d+ s"))
    page.reload()
    expect(summary).to_have_text(re.compile(r"Thought for \d+ s"))
