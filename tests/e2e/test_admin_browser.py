"""The admin as a moderator sees it in Chromium at 1280 px: the API usage list shows all its
columns (it was cut off), in English and in Chinese."""

import openai
import pytest
from playwright.sync_api import Page, expect

from tests.helpers.kimi_stub import Script


def make_calls(page: Page, server: str, kimi) -> None:
    page.goto("/api-keys/")
    page.get_by_label("Key name").fill("the build server in the basement, second rack")
    page.get_by_role("button", name="New API key").click()
    key = page.get_by_role("textbox", name="API key").input_value()
    client = openai.OpenAI(base_url=server + "/v1", api_key=key, max_retries=0)
    kimi.script = Script(tokens=["Hello", " there"])
    for stream in (False, True):
        answer = client.chat.completions.create(
            model="kimi-k2.6", messages=[{"role": "user", "content": "Hi"}], stream=stream
        )
        if stream:
            list(answer)


@pytest.mark.parametrize("language", ["en-US", "zh-CN"])
def test_api_usage_fits_at_1280_px(page: Page, server, kimi, browser, language):
    make_calls(page, server, kimi)
    context = browser.new_context(
        base_url=server, locale=language, viewport={"width": 1280, "height": 800}
    )
    admin = context.new_page()
    admin.context.add_cookies(page.context.cookies())
    admin.goto("/admin/api/apicall/")
    rows = admin.locator("#result_list tbody tr")
    expect(rows.first).to_be_visible()
    widths = "r => [r.scrollWidth, r.clientWidth]"
    scroll_width, client_width = admin.locator(".results").evaluate(widths)
    assert scroll_width <= client_width
    # The last column, with the tokens, is on the screen.
    last = admin.locator("#result_list thead th").last
    box = last.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 1280
    context.close()
