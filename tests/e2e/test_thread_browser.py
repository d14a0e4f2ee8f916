"""Regenerate, versions, Edit, Retry and conversation housekeeping, as a person uses them."""

import re

from playwright.sync_api import Page, expect

from tests.helpers.browser import answer_done, send
from tests.helpers.kimi_stub import Script


def test_regenerate_then_flip_between_versions(page: Page, kimi):
    kimi.script = Script(tokens=["The", " first", " answer"])
    send(page, "Tell me something")
    answer = answer_done(page, "The first answer")

    kimi.script = Script(tokens=["A", " second", " take"])
    answer.get_by_role("button", name="Regenerate").click()
    answer = answer_done(page, "A second take")
    versions = answer.get_by_role("group", name="Versions")
    expect(versions).to_contain_text("2/2")

    versions.get_by_role("button", name="Previous version").click()
    answer = answer_done(page, "The first answer")
    expect(answer.get_by_role("group", name="Versions")).to_contain_text("1/2")
    expect(page.locator("article")).to_have_count(2)
    # The history sent next follows the version shown.
    kimi.script = Script(tokens=["Noted"])
    send(page, "Thanks")
    answer_done(page, "Noted")
    assert [m["content"] for m in kimi.streams[-1].body["messages"]] == [
        "Tell me something",
        "The first answer",
        "Thanks",
    ]


def test_edit_a_question_and_resend_it(page: Page, kimi):
    send(page, "What is 2+2?")
    answer_done(page, "Hello from the Kimi stub.")
    question = page.locator('article[data-role="user"]').first
    question.get_by_role("button", name="Edit").click()
    box = question.get_by_role("textbox", name="Edit message")
    box.fill("What is 4+5?")
    kimi.script = Script(tokens=["Nine"])
    box.press("Enter")
    answer_done(page, "Nine")
    question = page.locator('article[data-role="user"]').first
    expect(question).to_contain_text("What is 4+5?")
    expect(question.get_by_role("group", name="Versions")).to_contain_text("2/2")
    assert [m["content"] for m in kimi.streams[-1].body["messages"]] == ["What is 4+5?"]


def test_a_failed_answer_says_why_and_retry_works(page: Page, kimi):
    kimi.script = Script(status=500)
    send(page, "Hello?")
    failed = page.locator('article[data-role="assistant"]').last
    expect(failed).to_have_attribute("data-state", "error")
    expect(failed.get_by_role("alert")).to_contain_text("Kimi had an internal error")
    kimi.script = Script(tokens=["Back", " again"])
    failed.get_by_role("button", name="Retry").click()
    answer = answer_done(page, "Back again")
    expect(answer.get_by_role("group", name="Versions")).to_contain_text("2/2")


def test_two_tabs_both_show_stop_and_either_stops(page: Page, kimi, server):
    kimi.script = Script(tokens=["Partial", " answer"] + [" more"] * 200, stall_after=2)
    send(page, "Write a lot")
    page.wait_for_url(re.compile(r"/c/\d+/$"))
    other = page.context.new_page()
    other.goto(page.url)
    for tab in (page, other):
        expect(tab.get_by_role("button", name="Stop")).to_be_visible()
        expect(tab.locator("article").last).to_contain_text("Partial answer")
    other.get_by_role("button", name="Stop").click()
    for tab in (page, other):
        expect(tab.locator("article").last).to_have_attribute("data-state", "stopped")
        expect(tab.get_by_role("button", name="Stop")).to_be_hidden()
    kimi.wait_for(lambda: kimi.streams[-1].closed_early)


def test_search_rename_and_delete(page: Page, kimi):
    send(page, "Plan a trip to Kyoto")
    answer_done(page, "Hello from the Kimi stub.")
    page.get_by_role("link", name="New chat").click()
    send(page, "Best green tea?")
    answer_done(page, "Hello from the Kimi stub.")

    conversations = page.get_by_role("navigation", name="Conversations")
    conversations.get_by_role("searchbox", name="Search conversations").fill("kyoto")
    found = conversations.locator("#conversation-list").get_by_role("link")
    expect(found).to_have_count(1)  # the match
    expect(conversations.get_by_role("link", name=re.compile("Kyoto"))).to_be_visible()
    conversations.get_by_role("searchbox", name="Search conversations").fill("")
    expect(conversations.get_by_role("link", name="Best green tea?")).to_be_visible()

    page.get_by_text("Rename").click()
    page.get_by_role("textbox", name="Title").fill("Tea notes")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="Tea notes")).to_be_visible()
    expect(conversations.get_by_role("link", name="Tea notes")).to_be_visible()

    page.get_by_role("link", name="Delete").click()
    expect(page.get_by_role("heading", name="Delete this conversation?")).to_be_visible()
    page.get_by_role("button", name="Delete conversation").click()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(conversations.get_by_role("link", name="Tea notes")).to_have_count(0)
