"""The composer as a newcomer meets it: its settings say what is wrong with them, are kept in a
chat just started, and look like boxes to type in, on a desktop, a phone and in the dark."""

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_page_browser import PHONE, user_page
from tests.helpers.browser import answer_done, send


def open_settings(page: Page) -> None:
    page.locator("summary", has_text="Settings").click()


def test_an_out_of_range_setting_is_named_beside_it_and_the_message_waits(page: Page, kimi):
    open_settings(page)
    # (Today's models fix their own temperature, so its box is read-only: the answer's length
    # is the setting with a range that every model takes.)
    max_tokens = page.get_by_label("Max tokens")
    max_tokens.fill("0")
    open_settings(page)  # closed again: the setting is out of sight
    expect(max_tokens).to_be_hidden()
    send(page, "Keep me too")

    # The panel opens on the setting, which says what is wrong; the message waits.
    expect(max_tokens).to_be_visible()
    expect(max_tokens).to_be_focused()
    error = page.locator("#id_max_tokens-error")
    expect(error).to_have_text("Enter a number from 1 to 1,000,000.")
    expect(error).to_have_attribute("role", "alert")
    expect(page.get_by_role("textbox", name="Message")).to_have_value("Keep me too")
    assert kimi.requests == []

    max_tokens.fill("500")
    expect(error).to_be_hidden()
    page.get_by_role("textbox", name="Message").press("Enter")
    answer_done(page, "Hello from the Kimi stub.")
    assert kimi.streams[-1].body["max_completion_tokens"] == 500


def test_settings_changed_in_a_chat_just_started_are_kept(page: Page, kimi):
    page.get_by_label("Model").select_option("kimi-k2.6")  # thinks unless told not to
    send(page, "A chat just started")
    answer_done(page, "Hello from the Kimi stub.")
    expect(page).to_have_url(re.compile(r"/c/\d+/$"))
    chat_url = page.url

    thinking = page.get_by_role("checkbox", name="Thinking")
    with page.expect_response(re.compile(r"/settings/$")) as saved:
        thinking.uncheck()
    assert saved.value.ok
    open_settings(page)
    page.get_by_label("System prompt").fill("Answer in one word.")
    page.get_by_label("Max tokens").click()  # the prompt box loses focus: it changed
    expect(page.get_by_role("status").filter(has_text="Settings saved.")).to_be_visible()

    page.goto("/")
    page.goto(chat_url)
    expect(page.get_by_role("checkbox", name="Thinking")).not_to_be_checked()
    expect(page.get_by_label("System prompt")).to_have_value("Answer in one word.")


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_settings_text_boxes_have_a_border(browser, server, kimi, scheme, size):
    options = {"viewport": PHONE, "has_touch": True} if size == "phone" else {}
    page = user_page(browser, server, color_scheme=scheme, **options)
    open_settings(page)
    for name in ("System prompt", "Stop sequences"):
        box = page.get_by_label(name)
        expect(box).to_be_visible()
        # A line of its own colour around it, not the colour of the box itself.
        border = box.evaluate(
            "e => { const s = getComputedStyle(e); return [s.borderTopStyle,"
            " parseFloat(s.borderTopWidth), s.borderTopColor, s.backgroundColor]; }"
        )
        style, width, colour, inside = border
        assert style == "solid" and width >= 1 and colour != inside, (name, border)
    page.context.close()


def test_on_a_phone_the_header_is_one_row_and_the_composer_one_row_that_grows(
    browser, server, kimi
):
    page = user_page(browser, server, viewport=PHONE, has_touch=True)
    header = page.locator(".topbar").bounding_box()
    assert header is not None and header["height"] < 70, header  # one row of 44 px links

    box = page.get_by_role("textbox", name="Message")
    send_button = page.get_by_role("button", name="Send")
    row, button = box.bounding_box(), send_button.bounding_box()
    assert row is not None and button is not None
    assert row["height"] < 60, row  # one line
    # Send is on the message box's row, not on one of its own.
    assert abs((row["y"] + row["height"] / 2) - (button["y"] + button["height"] / 2)) < 12
    composer = page.locator("#composer").bounding_box()
    # The row that grows, and under it the bar: model, Effort, Thinking, Web search, Settings
    # (a third of the screen before).
    assert composer is not None and composer["height"] < PHONE["height"] / 4, composer

    box.fill("one\ntwo\nthree\nfour")
    grown = box.bounding_box()
    assert grown is not None and grown["height"] > row["height"] + 40, grown
    box.press("Enter")
    answer_done(page, "Hello from the Kimi stub.")
    expect(box).to_have_value("")
    shrunk = box.bounding_box()
    assert shrunk is not None and shrunk["height"] < 60, shrunk
    page.context.close()


def test_on_a_desktop_each_setting_sits_beside_its_label_under_the_fixed_sampling_note(
    page: Page, kimi
):
    expect(page.get_by_label("Model")).to_have_value("kimi-k3")  # fixes its own sampling
    open_settings(page)
    note = page.locator("#settings .fixed-note")
    expect(note).to_be_visible()
    for name in ("System prompt", "Temperature", "Max tokens"):
        label = page.locator("#settings label", has_text=name).bounding_box()
        field = page.get_by_label(name).bounding_box()
        assert label is not None and field is not None
        assert label["x"] < field["x"], name  # the label on the left, its field on the right
        assert abs(label["y"] - field["y"]) < 20, (name, label, field)  # on one row
