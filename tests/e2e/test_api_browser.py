"""A person makes a personal API key in Chromium, copies it, uses it with the openai SDK
against the running server, and revokes it."""

import contextlib
import io
import re
from pathlib import Path

import openai
import pytest
from playwright.sync_api import Page, expect

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def readme_snippet(base_url: str, key: str) -> str:
    """The Python of docs/api.md's "Use it from code", pointed at `base_url` with `key`."""
    section = API_DOC.read_text().split("## Use it from code", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert 'base_url="http://127.0.0.1:8000/v1"' in code and 'api_key="kc-…"' in code
    return code.replace("http://127.0.0.1:8000/v1", base_url).replace("kc-…", key)


def test_create_copy_use_and_revoke_a_key(page: Page, server, kimi):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Key name").fill("laptop notebook")
    page.get_by_role("button", name="New API key").click()

    shown = page.get_by_role("textbox", name="API key")
    expect(shown).to_have_attribute("readonly", "")
    key = shown.input_value()
    assert key.startswith("kc-")
    page.get_by_role("button", name="Copy", exact=True).click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == key

    # docs/api.md's "Use it from code", as written there, with this server and this key.
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(readme_snippet(server + "/v1", key), {})
    assert printed.getvalue() == "Let me think about it.Hello from the Kimi stub."
    client = openai.OpenAI(base_url=server + "/v1", api_key=key, max_retries=0)

    page.reload()  # the key is shown once: not after a reload
    expect(page.get_by_role("textbox", name="API key")).to_have_count(0)
    keys = page.get_by_role("list", name="Your API keys")
    expect(keys).to_contain_text("laptop notebook")
    expect(keys).to_contain_text("last used")
    page.get_by_role("button", name="Revoke laptop notebook").click()
    expect(keys).not_to_contain_text("laptop notebook")
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(
            model="kimi-k2.6", messages=[{"role": "user", "content": "Hi"}]
        )

    page.get_by_role("link", name="Use KimiChat from code").click()
    expect(page.locator("pre").nth(1)).to_contain_text(f'base_url="{server}/v1"')
