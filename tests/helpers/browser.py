"""What a person does in Chromium, shared by the browser tests."""

from playwright.sync_api import Page, expect


def send(page: Page, text: str) -> None:
    box = page.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")


def answer_done(page: Page, text: str):
    answer = page.locator('article[data-role="assistant"]').last
    expect(answer).to_have_attribute("data-state", "done")
    expect(answer).to_contain_text(text)
    return answer


RICH = [
    "Euler says $e^{i\\pi}+1=0$ and\n\n$$\n\\int_0^1 x\\,dx = \\frac{1}{2}\n$$\n\n",
    "```python\n",
    "print('hi')\n",
    "```\n\n",
    "| n | square |\n|--:|:--|\n| 2 | 4 |\n\n",
    "- [x] done\n- [ ] to do\n\n",
    "![a cat](https://example.com/cat.png)\n\n",
    "<img src=x onerror=alert(1)> still",
]
