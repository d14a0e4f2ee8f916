"""Take the Chinese pages' screenshots (docs/screenshots/*-zh.png), to read them back:
`.venv/bin/python -m tools.screenshots_zh` (needs Chromium, Debian's chromium-l10n and a CJK
font, fonts-wqy-microhei). The browser asks for zh-CN; elements are found by id and class,
not by their (Chinese) names."""

import re
import tempfile
from pathlib import Path

import openai
from playwright.sync_api import Browser, Page, expect

from tests.helpers import documents
from tests.helpers.kimi_stub import KimiStub, Script
from tools.shooting import DESKTOP, OUT, logged_in, serving

ANSWER = """进程拥有自己的内存；**线程**共享所属进程的内存。

| | 进程 | 线程 |
|---|---|---|
| 内存 | 独立 | 共享 |
| 切换 | 较慢 | 较快 |"""
THOUGHTS = "用户想知道进程和线程的区别：内存、崩溃和切换开销，用一个表格说明。"


def chunks(text: str) -> list[str]:
    """Chinese as Kimi streams it: a character or two at a time (Markdown's lines kept)."""
    return re.findall(r"\n|[^\n]{1,2}", text)


def shoot_visitor(browser: Browser, base: str) -> None:
    """The pages before logging in: sign-up (with its approval hint) and log-in."""
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    page = context.new_page()
    page.goto(base + "/accounts/signup/")
    expect(page.locator("main form").first).to_be_visible()
    page.screenshot(path=OUT / "signup-zh.png")
    page.goto(base + "/accounts/login/")
    expect(page.locator("main form").first).to_be_visible()
    page.screenshot(path=OUT / "login-zh.png")
    context.close()


def shoot_chat(page: Page, base: str, stub: KimiStub) -> None:
    """The composer's settings, an answer with its thinking and a web search, the report
    dialog on it."""
    page.goto(base + "/")
    page.locator("#composer summary").filter(has_text="设置").click()
    expect(page.locator(".settings-panel[open] .settings")).to_be_visible()
    page.screenshot(path=OUT / "chat-settings-zh.png")
    page.goto(base + "/")
    page.locator("#id_web_search").check()
    stub.script = Script(reasoning=chunks(THOUGHTS), tokens=chunks(ANSWER), delay=0.03)
    stub.script.searches = ["进程 线程 区别"]
    box = page.locator('textarea[name="message"]')
    box.fill("进程和线程有什么区别？")
    box.press("Enter")
    answer = page.locator('article[data-role="assistant"]')
    expect(answer).to_have_attribute("data-state", "done")
    expect(answer.locator(".searched")).to_contain_text("进程 线程 区别")
    page.screenshot(path=OUT / "chat-zh.png")
    answer.locator("button.report").click()
    page.locator("#report-reason").fill("表格里“切换”一行说反了。")
    expect(page.locator("#report-dialog")).to_be_visible()
    page.screenshot(path=OUT / "report-zh.png")
    page.locator("#report-form button[type=submit]").click()
    expect(answer.locator("button.report")).to_be_disabled()


def shoot_files(page: Page, base: str) -> None:
    """The Files page with a file read, and a team with it in its library."""
    folder = Path(tempfile.mkdtemp())
    (folder / "季度报告.docx").write_bytes(documents.docx_bytes())
    page.goto(base + "/files/")
    page.locator('input[type="file"]').set_input_files(str(folder / "季度报告.docx"))
    page.locator(".upload-form button[type=submit]").click()
    expect(page.get_by_role("status").filter(has_text="就绪").first).to_be_visible()
    page.goto(base + "/files/")
    page.screenshot(path=OUT / "files-zh.png")

    page.goto(base + "/teams/")
    page.locator("#id_name").fill("工厂运营")
    page.locator(".upload-form button[type=submit]").click()
    expect(page.locator("h1")).to_have_text("工厂运营")
    page.locator('input[type="file"]').set_input_files(str(folder / "季度报告.docx"))
    page.locator(".upload-form button[type=submit]").first.click()
    expect(page.get_by_role("status").filter(has_text="就绪").first).to_be_visible()
    page.reload()  # without the notice of the upload, as the page is found later
    expect(page.get_by_role("status").filter(has_text="就绪").first).to_be_visible()
    page.screenshot(path=OUT / "team-zh.png", full_page=True)


def shoot_account(page: Page, base: str) -> None:
    page.goto(base + "/accounts/")
    expect(page.locator("h1")).to_be_visible()
    page.screenshot(path=OUT / "account-zh.png", full_page=True)
    page.goto(base + "/accounts/password/change/")
    expect(page.locator("main form").first).to_be_visible()
    page.screenshot(path=OUT / "password-change-zh.png")


def call_the_api(page: Page, base: str, stub: KimiStub) -> None:
    """A key made on its page, and a few calls with it: rows for the API usage list."""
    page.goto(base + "/api-keys/")
    page.locator("#id_name").fill("笔记本电脑")
    page.locator(".upload-form button[type=submit]").click()
    key = page.locator("#new-api-key").input_value()
    page.screenshot(path=OUT / "api-keys-zh.png")
    page.goto(base + "/api-keys/code/")
    page.screenshot(path=OUT / "api-code-zh.png", full_page=True)
    client = openai.OpenAI(base_url=base + "/v1", api_key=key)
    stub.script = Script(reasoning=[], tokens=["你好", "！"])
    for stream in (False, True, False):
        answer = client.chat.completions.create(
            model="kimi-k2.6", messages=[{"role": "user", "content": "你好"}], stream=stream
        )
        if stream:
            list(answer)


def shoot_admin(page: Page, base: str) -> None:
    """The admin's index, usage pages and quota form; the moderators' queue of reports and
    the transcript that one opens."""
    pages = {
        "admin-zh.png": "/admin/",
        "admin-usage-zh.png": "/admin/accounts/usage/",
        "admin-api-usage-zh.png": "/admin/api/apicall/",
        "admin-token-quota-zh.png": "/admin/accounts/tokenquota/add/",
        "admin-conversations-zh.png": "/admin/conversations/conversation/",
        "admin-reports-zh.png": "/admin/moderation/report/",
    }
    for name, path in pages.items():
        page.goto(base + path)
        expect(page.locator("#content")).to_be_visible()
        page.screenshot(path=OUT / name, full_page=name == "admin-zh.png")
    page.locator("#result_list a[href*='#msg-']").first.click()
    expect(page.locator(".transcript-message:target")).to_be_visible()
    page.screenshot(path=OUT / "admin-transcript-zh.png")


def main() -> None:
    with serving("zh_CN") as (server, stub, browser):
        base = f"http://{server.url}"
        shoot_visitor(browser, base)
        page = logged_in(browser, server, locale="zh-CN").new_page()
        shoot_chat(page, base, stub)
        shoot_files(page, base)
        shoot_account(page, base)
        call_the_api(page, base, stub)
        shoot_admin(page, base)


if __name__ == "__main__":
    main()
