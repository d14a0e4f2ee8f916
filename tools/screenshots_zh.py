"""Take the Chinese pages' screenshots (docs/screenshots/*-zh.png), to read them back:
`.venv/bin/python -m tools.screenshots_zh` (needs chromium). The browser asks for zh-CN."""

import re
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from bench.harness import daphne
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.helpers import documents
from tests.helpers.kimi_stub import KimiStub, Script

OUT = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
ANSWER = """进程拥有自己的内存；**线程**共享所属进程的内存。

| | 进程 | 线程 |
|---|---|---|
| 内存 | 独立 | 共享 |
| 切换 | 较慢 | 较快 |"""


def shoot_visitor(browser, base: str) -> None:
    """The pages before logging in: sign-up (with its approval hint) and log-in."""
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    page = context.new_page()
    page.goto(base + "/accounts/signup/")
    page.screenshot(path=OUT / "signup-zh.png")
    page.goto(base + "/accounts/login/")
    page.screenshot(path=OUT / "login-zh.png")
    context.close()


def shoot_user(page, base: str, stub: KimiStub) -> None:
    """A chat with an answer, the Files page with a file, a team, the Account pages."""
    page.goto(base + "/")
    page.locator("#composer summary").filter(has_text="设置").click()
    page.screenshot(path=OUT / "chat-settings-zh.png")
    page.goto(base + "/")
    stub.script = Script(tokens=re.findall(r"\S+|\s+", ANSWER), delay=0.005)
    box = page.locator('textarea[name="message"]')
    box.fill("进程和线程有什么区别？")
    box.press("Enter")
    answer = page.locator('article[data-role="assistant"]')
    expect(answer).to_have_attribute("data-state", "done")
    page.screenshot(path=OUT / "chat-zh.png")

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
    page.screenshot(path=OUT / "team-zh.png", full_page=True)

    page.goto(base + "/accounts/")
    page.screenshot(path=OUT / "account-zh.png", full_page=True)
    page.goto(base + "/accounts/password/change/")
    page.screenshot(path=OUT / "password-change-zh.png")


def call_the_api(page, base: str, stub: KimiStub) -> None:
    """A key made on its page, and a few calls with it: rows for the API usage list."""
    import openai

    page.goto(base + "/api-keys/")
    page.locator("#id_name").fill("笔记本电脑")
    page.locator(".upload-form button[type=submit]").click()
    key = page.locator("#new-api-key").input_value()
    page.screenshot(path=OUT / "api-keys-zh.png")
    page.goto(base + "/api-keys/code/")
    page.screenshot(path=OUT / "api-code-zh.png", full_page=True)
    client = openai.OpenAI(base_url=base + "/v1", api_key=key)
    stub.script = Script(tokens=["你好", "！"])
    for stream in (False, True, False):
        answer = client.chat.completions.create(
            model="kimi-k2.5", messages=[{"role": "user", "content": "你好"}], stream=stream
        )
        if stream:
            list(answer)


def shoot_admin(page, base: str, stub: KimiStub) -> None:
    call_the_api(page, base, stub)
    page.goto(base + "/admin/")
    page.screenshot(path=OUT / "admin-zh.png", full_page=True)
    page.goto(base + "/admin/accounts/usage/")
    page.screenshot(path=OUT / "admin-usage-zh.png")
    page.goto(base + "/admin/api/apicall/")
    page.screenshot(path=OUT / "admin-api-usage-zh.png")
    page.goto(base + "/admin/accounts/tokenquota/add/")
    page.screenshot(path=OUT / "admin-token-quota-zh.png")


def main() -> None:
    stub = KimiStub().start_in_thread()
    with daphne(stub.base_url.removesuffix("/v1"), users=1) as server, sync_playwright() as p:
        base = f"http://{server.url}"
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        shoot_visitor(browser, base)
        context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
        name, value = server.cookies[0].split("=", 1)
        context.add_cookies([{"name": name, "value": value, "url": base}])
        page = context.new_page()
        shoot_user(page, base, stub)
        shoot_admin(page, base, stub)
        browser.close()
    stub.stop()


if __name__ == "__main__":
    main()
