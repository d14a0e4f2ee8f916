"""Kimi as it is today (December 2026) in Chromium, against the stub that behaves like it: a
fresh install answers at once, kimi-k3's Effort, web search and page reading through Kimi's
official tools (surviving a reload mid-round), a conversation whose model Kimi retired, and
Continue on a thinking model."""

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import _daphne, _prepare, log_in
from tests.helpers.browser import send
from tests.helpers.kimi_stub import LEGACY_MODELS, MODELS, Script


def answer_of(page: Page):
    return page.locator('article[data-role="assistant"]').last


def test_a_fresh_install_on_todays_kimi_answers_the_first_message(page: Page, kimi):
    expect(page.get_by_label("Model")).to_have_value("kimi-k3")
    send(page, "Hello")
    answer = answer_of(page)
    expect(answer).to_have_attribute("data-state", "done")
    expect(answer.locator(".body")).to_have_text("Hello from the Kimi stub.")
    expect(answer.locator(".model")).to_have_text("kimi-k3")
    body = kimi.streams[-1].body
    assert body["model"] == "kimi-k3" and "thinking" not in body and "temperature" not in body


def test_kimi_k3_with_effort_low_reaches_kimi_as_low(page: Page, kimi):
    effort = page.get_by_label("Effort")
    expect(effort).to_have_value("max")  # Kimi's default
    effort.select_option("low")
    send(page, "Quick one")
    answer = answer_of(page)
    expect(answer).to_have_attribute("data-state", "done")
    assert kimi.streams[-1].body["reasoning_effort"] == "low"
    expect(answer).to_contain_text("Effort: Low")
    # Kept with the conversation; a model that takes no effort hides the control, and the
    # sampling it fixes is read-only, with the reason.
    page.reload()
    expect(page.get_by_label("Effort")).to_have_value("low")
    page.get_by_label("Model").select_option("kimi-k2.6")
    expect(page.get_by_label("Effort")).to_be_hidden()
    page.get_by_text("Settings", exact=True).click()
    expect(page.get_by_label("Temperature")).to_have_attribute("readonly", "")
    expect(page.get_by_text("This model fixes its own sampling")).to_be_visible()


def test_web_search_and_page_reading_on_kimi_k3_survive_a_reload_mid_round(page: Page, kimi):
    kimi.script = Script(
        searches=["kimi k3 release"],
        fetches=["https://example.org/news/k3"],
        reasoning=[f"thought {i}. " for i in range(40)],
        tokens=["Here is", " what I read."],
        delay=0.05,
    )
    page.get_by_role("checkbox", name="Web search").check()
    send(page, "What is new with kimi-k3?")
    answer = answer_of(page)
    expect(answer).to_contain_text("Searching: kimi k3 release")
    page.reload()  # mid-round: the steps so far are still there, and the rest comes
    answer = answer_of(page)
    expect(answer).to_contain_text("Searching: kimi k3 release")
    expect(answer).to_have_attribute("data-state", "done", timeout=30_000)
    expect(answer.locator(".body")).to_have_text("Here is what I read.")
    # The finished answer lists what was searched and read.
    expect(answer.get_by_role("link", name="example.org/news/k3")).to_have_attribute(
        "href", "https://example.org/news/k3"
    )
    expect(answer).to_contain_text("Searched: kimi k3 release")
    assert [f["name"] for f in kimi.fibers] == ["web_search", "fetch"]
    turns = [m for m in kimi.streams[-1].body["messages"] if m.get("tool_calls")]
    assert len(turns) == 2 and all(t["reasoning_content"] for t in turns)


def test_continue_on_a_thinking_model_sends_its_reasoning(page: Page, kimi):
    kimi.script = Script(reasoning=["Plan", " the story."], tokens=["Once", " upon"])
    kimi.script.finish_reason = "length"
    send(page, "Tell me a story")
    answer = answer_of(page)
    expect(answer).to_have_attribute("data-state", "done")

    kimi.script = Script(tokens=[" a time."])
    answer.get_by_role("button", name="Continue").click()
    expect(answer.locator(".body")).to_have_text("Once upon a time.")
    expect(answer).to_have_attribute("data-state", "done")
    assert kimi.streams[-1].body["messages"][-1] == {
        "role": "assistant",
        "content": "Once upon",
        "partial": True,
        "reasoning_content": "Plan the story.",
    }


@pytest.fixture(scope="module")
def quick_server(tmp_path_factory, kimi_stub):
    """A server that reads Kimi's models every half second: Kimi retires one mid-test."""
    tmp = tmp_path_factory.mktemp("e2e-models")
    env = _prepare(tmp, kimi_stub, KIMI_MODELS_REFRESH="0.5")
    with _daphne(env, tmp / "daphne.log") as url:
        yield url


def test_a_conversation_on_a_retired_model_goes_on_with_the_default(browser, quick_server, kimi):
    kimi.script.models = [m for m in LEGACY_MODELS if m["id"] in ("kimi-k3", "kimi-k2.5")]
    page = browser.new_context(base_url=quick_server, locale="en-US").new_page()
    log_in(page, quick_server)
    expect(page.get_by_label("Model").locator("option[value='kimi-k2.5']")).to_have_count(
        1, timeout=15_000
    )
    page.get_by_label("Model").select_option("kimi-k2.5")
    send(page, "First question")
    expect(answer_of(page)).to_have_attribute("data-state", "done")

    kimi.script.models = [dict(m) for m in MODELS]  # Kimi retires kimi-k2.5
    reads = len(kimi.reads)
    kimi.wait_for(lambda: len(kimi.reads) >= reads + 2)
    page.reload()
    expect(page.get_by_text("kimi-k2.5 is no longer offered by Kimi")).to_be_visible()
    send(page, "Still there?")
    answer = answer_of(page)
    expect(answer).to_have_attribute("data-state", "done")
    said = "kimi-k2.5 is no longer offered; continuing with kimi-k3."
    expect(answer).to_contain_text(said)
    expect(answer.locator(".model")).to_have_text("kimi-k3")
    sent = [m["content"] for m in kimi.streams[-1].body["messages"]]
    assert sent[:2] == ["First question", "Hello from the Kimi stub."]  # the history, whole
    send(page, "And again?")
    expect(page.locator('article[data-role="assistant"]')).to_have_count(3)
    expect(answer_of(page)).to_have_attribute("data-state", "done")
    expect(page.get_by_text(re.compile("continuing with kimi-k3"))).to_have_count(1)  # once
    page.context.close()
