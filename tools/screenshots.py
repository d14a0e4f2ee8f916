"""Retake the screenshots in docs/: `.venv/bin/python -m tools.screenshots` (needs chromium)."""

import re
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from bench.harness import daphne
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.helpers.kimi_stub import KimiStub, Script

# Files are read and answers streamed on a machine that may be busy: wait long enough.
expect.set_options(timeout=60_000)

OUT = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
TESTDATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "pdf"
ANSWER = """Here is a small Python function that counts words, with a test:

```python
from collections import Counter

def top_words(text: str, n: int = 3) -> list[tuple[str, int]]:
    return Counter(text.lower().split()).most_common(n)
```

| Input | Result |
|---|---|
| `"a b a"` | `[("a", 2), ("b", 1)]` |

It runs in $O(n)$ time for $n$ words. 需要我再解释一下吗？"""


SECOND = """A version that streams through a file, line by line:

```python
from collections import Counter

def top_words(lines, n=3):
    counts = Counter()
    for line in lines:
        counts.update(line.lower().split())
    return counts.most_common(n)
```

Call it with an open file to keep memory flat; `Counter.update` adds the counts of each line."""


FILE_ANSWER = """The report says revenue grew by **12%**, led by the East region (42).

- *report.docx*, table 1: East 42
- *pdflatex-4-pages.pdf*, page 2: the same figure, restated"""


def shoot_files(page, base: str, stub: KimiStub) -> None:
    """The composer with two files attached and `@` suggestions open, and the Files page."""
    from tests import documents

    folder = Path(tempfile.mkdtemp())
    (folder / "report.docx").write_bytes(documents.docx_bytes())
    page.goto(base + "/")
    page.get_by_label("Attach files").set_input_files(
        [str(folder / "report.docx"), str(TESTDATA / "pdflatex-4-pages.pdf")]
    )
    attached = page.get_by_role("group", name="Attached files")
    expect(attached.get_by_role("status").filter(has_text="Ready")).to_have_count(2)
    box = page.get_by_role("textbox", name="Message")
    box.fill("Compare the revenue figures in ")
    box.press_sequentially("@")
    expect(page.get_by_role("listbox", name="File suggestions")).to_be_visible()
    page.screenshot(path=OUT / "attach.png")
    box.press("Enter")
    box.press_sequentially("and the PDF.")
    stub.script = Script(tokens=re.findall(r"\S+|\s+", FILE_ANSWER), delay=0.01)
    box.press("Enter")
    answer = page.locator('article[data-role="assistant"]')
    expect(answer).to_have_attribute("data-state", "done")
    page.screenshot(path=OUT / "file-answer.png")
    page.goto(base + "/files/")
    page.screenshot(path=OUT / "files.png")


THOUGHTS = (
    "The user wants the difference between a process and a thread. "
    "Key points: memory is shared between threads, not between processes; "
    "a crash in one thread takes the process down; switching threads is cheaper. "
    "I should give a short table and one example in Python, since they asked in a coding "
    "context."
)
THOUGHT_ANSWER = """A **process** has its own memory; **threads** share the memory of their process.

| | Process | Thread |
|---|---|---|
| Memory | its own | shared |
| Crash | isolated | takes the process down |
| Switching | slower | faster |"""
SEARCH_ANSWER = """Moonshot AI released **Kimi K2.6** this month, with a 256k context window and
thinking that can be switched off per request [1].

[1] platform.kimi.ai, *Models overview*"""


def shoot_kimi(page, base: str, stub: KimiStub) -> None:
    """Kimi thinking live (the section open and filling), then an answer from a web search."""
    page.goto(base + "/")
    page.get_by_label("Model").select_option("kimi-k3")
    stub.script = Script(
        reasoning=re.findall(r"\S+|\s+", THOUGHTS),
        tokens=re.findall(r"\S+|\s+", THOUGHT_ANSWER),
        delay=0.03,
    )
    box = page.get_by_role("textbox", name="Message")
    box.fill("What is the difference between a process and a thread?")
    box.press("Enter")
    answer = page.locator('article[data-role="assistant"]')
    expect(answer.get_by_role("group", name="Thinking")).to_contain_text("crash in one thread")
    page.screenshot(path=OUT / "thinking.png")
    expect(answer).to_have_attribute("data-state", "done")
    page.goto(base + "/")
    page.get_by_role("checkbox", name="Web search").check()
    stub.script = Script(
        searches=["Kimi K2.6 release"], tokens=re.findall(r"\S+|\s+", SEARCH_ANSWER), delay=0.01
    )
    box.fill("What did Moonshot AI release this month?")
    box.press("Enter")
    expect(answer).to_have_attribute("data-state", "done")
    page.screenshot(path=OUT / "web-search.png")


def shoot_moderation(page, base: str, chat_url: str) -> None:
    """The report dialog on an answer, then the moderator's transcript of that conversation."""
    page.goto(chat_url)
    answer = page.locator('article[data-role="assistant"]').last
    answer.get_by_role("button", name="Report").click()
    dialog = page.get_by_role("dialog", name="Report this message")
    dialog.get_by_label("Reason").fill("The complexity claim is wrong for very long texts.")
    page.screenshot(path=OUT / "report.png")
    dialog.get_by_role("button", name="Send report").click()
    expect(answer.get_by_role("button", name="Reported")).to_be_visible()
    page.goto(f"{base}/admin/moderation/report/")
    page.get_by_role("link", name="Open in the transcript").click()
    expect(page.locator(".transcript-message:target")).to_be_visible()
    page.screenshot(path=OUT / "moderation.png")


def shoot_teams(page, base: str, stub: KimiStub) -> None:
    """A team's page with its library, then an answer from passages of a long manual, with
    its sources."""
    from tests import documents

    folder = Path(tempfile.mkdtemp())
    manual = folder / "plant-manual.pdf"
    filler = (
        "Section {n}. Inspect the seals, filters and bearings of unit {n}; record the "
        "readings in the logbook and report any leak to the shift supervisor. "
    )
    pages = [
        "The Zephyr relief valve opens at 42 bar." if n == 87 else filler.format(n=n) * 6
        for n in range(1, 121)
    ]
    manual.write_bytes(documents.pdf_bytes(pages))
    page.goto(base + "/teams/")
    page.get_by_label("Team name").fill("Plant Operations")
    page.get_by_role("button", name="New team").click()
    page.get_by_label("Upload to team").set_input_files(str(manual))
    page.get_by_role("button", name="Upload", exact=True).click()
    files = page.get_by_role("list", name="Team files")
    expect(files.get_by_role("status").filter(has_text="Ready")).to_be_visible()
    page.screenshot(path=OUT / "team.png")
    page.goto(base + "/")
    page.get_by_label("Model").select_option("kimi-k2.6")
    box = page.get_by_role("textbox", name="Message")
    box.fill("@plant-operations At what pressure does the Zephyr relief valve open?")
    stub.script = Script(
        tokens=re.findall(r"\S+|\s+", "The Zephyr relief valve opens at **42 bar** [1]."),
        delay=0.01,
    )
    box.press("Enter")
    answer = page.locator('article[data-role="assistant"]')
    expect(answer).to_have_attribute("data-state", "done")
    page.screenshot(path=OUT / "sources.png")


MATH_ANSWER = """The roots of $ax^2 + bx + c = 0$ are

$$
x = \\frac{-b \\pm \\sqrt{b^2 - 4ac}}{2a}
$$

```python
import math

def roots(a: float, b: float, c: float) -> tuple[float, float]:
    d = math.sqrt(b * b - 4 * a * c)
    return (-b + d) / (2 * a), (-b - d) / (2 * a)
```

| $a$ | $b$ | $c$ | roots |
|--:|--:|--:|:--|
| 1 | -3 | 2 | 2, 1 |

- [x] real roots when $b^2 \\ge 4ac$
- [ ] complex roots: use `cmath`
"""


def shoot_looks(browser, base: str, cookie: dict, stub: KimiStub) -> None:
    """Light and dark, desktop and phone: a streaming answer with math and code, the chat on a
    phone with its drawer and its Settings sheet, the Files and team pages in dark."""
    for scheme in ("light", "dark"):
        for size, viewport in (("desktop", {"width": 1280, "height": 800}), ("phone", PHONE)):
            context = browser.new_context(
                viewport=viewport, locale="en-US", color_scheme=scheme, has_touch=size == "phone"
            )
            context.add_cookies([cookie])
            page = context.new_page()
            page.goto(base + "/")
            tokens = re.findall(r"\S+|\s+", MATH_ANSWER)
            stub.script = Script(tokens=tokens + [" …"] * 400, stall_after=len(tokens))
            box = page.get_by_role("textbox", name="Message")
            box.fill("How do I solve a quadratic equation? Show the code too.")
            box.press("Enter")
            answer = page.locator('article[data-role="assistant"]')
            expect(answer.locator(".body-preview")).to_contain_text("cmath")
            expect(answer.locator(".katex").first).to_be_visible()
            page.screenshot(path=OUT / f"streaming-math-{scheme}-{size}.png")
            page.locator("#composer").get_by_role("button", name="Stop").click()
            expect(answer).to_have_attribute("data-state", "stopped")
            if size == "phone":
                page.get_by_text("Settings", exact=True).click()
                page.screenshot(path=OUT / f"phone-settings-{scheme}.png")
                page.get_by_role("button", name="Done").click()
                page.get_by_role("button", name="Conversations").click()
                # Once the drawer has slid in.
                slid_in = "() => getComputedStyle(document.getElementById('sidebar')).transform"
                page.wait_for_function(slid_in + " === 'none'")
                page.screenshot(path=OUT / f"phone-drawer-{scheme}.png")
            page.goto(base + "/files/")
            page.screenshot(path=OUT / f"files-{scheme}-{size}.png")
            page.goto(base + "/teams/")
            page.get_by_role("link", name="Plant Operations").click()
            page.screenshot(path=OUT / f"team-{scheme}-{size}.png")
            context.close()


PHONE = {"width": 390, "height": 844}


def main() -> None:
    stub = KimiStub().start_in_thread()
    stub.script = Script(tokens=re.findall(r"\S+|\s+", ANSWER), delay=0.01)
    with daphne(stub.base_url.removesuffix("/v1"), users=1) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
        name, value = server.cookies[0].split("=", 1)
        context.add_cookies([{"name": name, "value": value, "url": f"http://{server.url}"}])
        page = context.new_page()
        page.goto(f"http://{server.url}/")
        page.screenshot(path=OUT / "new-chat.png")
        box = page.get_by_role("textbox", name="Message")
        box.fill("Write a Python function that returns the most common words in a text.")
        box.press("Enter")
        answer = page.locator('article[data-role="assistant"]')
        expect(answer).to_contain_text("Counter")
        page.screenshot(path=OUT / "streaming.png")
        expect(answer).to_have_attribute("data-state", "done")
        page.screenshot(path=OUT / "chat.png")
        stub.script = Script(tokens=re.findall(r"\S+|\s+", SECOND), delay=0.01)
        answer.get_by_role("button", name="Regenerate").click()
        expect(answer).to_contain_text("Counter.update")
        expect(answer).to_have_attribute("data-state", "done")
        page.screenshot(path=OUT / "versions.png")
        chat_url = page.url
        shoot_files(page, f"http://{server.url}", stub)
        shoot_moderation(page, f"http://{server.url}", chat_url)
        shoot_teams(page, f"http://{server.url}", stub)
        shoot_kimi(page, f"http://{server.url}", stub)
        cookie = {"name": name, "value": value, "url": f"http://{server.url}"}
        shoot_looks(browser, f"http://{server.url}", cookie, stub)
        login = browser.new_page(viewport={"width": 1280, "height": 800})
        login.goto(f"http://{server.url}/accounts/login/")
        login.screenshot(path=OUT / "login.png")
        browser.close()
    stub.stop()


if __name__ == "__main__":
    main()
