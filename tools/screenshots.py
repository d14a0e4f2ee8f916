"""Retake the screenshots in docs/: `.venv/bin/python -m tools.screenshots` (needs Chromium).
Answers are held mid-stream by the stub (`hold_stream`) while a picture is taken, so each one
shows the moment it is meant to, however slow the machine."""

import tempfile
from pathlib import Path

from playwright.sync_api import Browser, Locator, Page, expect

from bench.harness import Server
from tests.helpers import documents
from tests.helpers.kimi_stub import KimiStub, Script
from tools.shooting import DESKTOP, OUT, PHONE, ROOT, logged_in, serving, words

TESTDATA = ROOT / "tests" / "data" / "pdf"
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
# Pages of a manual too long for kimi-k2.6's window (256k tokens), so that the question gets
# its passages, and the answer its sources: one page names the valve.
MANUAL_PAGES = 600
FILLER = (
    "Section {n}. Inspect the seals, filters and bearings of unit {n}; record the readings in "
    "the logbook and report any leak to the shift supervisor. "
)


def kimi_says(text: str, thinks: str) -> Script:
    """A thinking model's answer, streamed at a pace that shows how long it thought."""
    return Script(reasoning=words(thinks), tokens=words(text), delay=0.05)


def assistant(page: Page) -> Locator:
    return page.locator('article[data-role="assistant"]')


def shoot_chat(page: Page, base: str, stub: KimiStub) -> str:
    """A new chat; an answer held mid-stream, then done; a second version. Its address."""
    page.goto(base + "/")
    expect(page.get_by_role("heading", name="What can Kimi help you with?")).to_be_visible()
    page.screenshot(path=OUT / "new-chat.png")
    stub.script = kimi_says(ANSWER, "A word count: Counter does it; add a table of an example.")
    stub.hold_stream(len(words(ANSWER.split("It runs in")[0])))
    box = page.get_by_role("textbox", name="Message")
    box.fill("Write a Python function that returns the most common words in a text.")
    box.press("Enter")
    answer = assistant(page)
    expect(answer.locator("table")).to_contain_text('("b", 1)')
    page.screenshot(path=OUT / "streaming.png")
    stub.release()
    expect(answer).to_have_attribute("data-state", "done")
    expect(answer.locator(".katex").first).to_be_visible()
    page.screenshot(path=OUT / "chat.png")
    stub.script = kimi_says(SECOND, "They may have a large file: stream it line by line.")
    answer.get_by_role("button", name="Regenerate").click()
    expect(answer).to_contain_text("Counter.update")
    expect(answer).to_have_attribute("data-state", "done")
    expect(answer.get_by_role("group", name="Versions")).to_contain_text("2/2")
    page.screenshot(path=OUT / "versions.png")
    return page.url


def shoot_files(page: Page, base: str, stub: KimiStub) -> None:
    """The composer with two files attached and `@` suggestions open, and the Files page."""
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
    suggestions = page.get_by_role("listbox", name="File suggestions")
    expect(suggestions.get_by_role("option")).to_have_count(2)
    page.screenshot(path=OUT / "attach.png")
    suggestions.get_by_role("option").filter(has_text="report.docx").click()
    expect(box).to_have_value("Compare the revenue figures in @report.docx ")
    box.press_sequentially("and the PDF.")
    stub.script = kimi_says(FILE_ANSWER, "Both files give revenue by region; compare them.")
    box.press("Enter")
    expect(assistant(page)).to_have_attribute("data-state", "done")
    page.screenshot(path=OUT / "file-answer.png")
    page.goto(base + "/files/")
    expect(page.get_by_role("status").filter(has_text="Ready")).to_have_count(2)
    page.screenshot(path=OUT / "files.png")


def shoot_moderation(page: Page, base: str, chat_url: str) -> None:
    """The report dialog on an answer, then the moderator's transcript of that conversation."""
    page.goto(chat_url)
    answer = assistant(page).last
    answer.get_by_role("button", name="Report").click()
    dialog = page.get_by_role("dialog", name="Report this message")
    dialog.get_by_label("Reason").fill("The complexity claim is wrong for very long texts.")
    page.screenshot(path=OUT / "report.png")
    dialog.get_by_role("button", name="Send report").click()
    expect(answer.get_by_role("button", name="Reported")).to_be_visible()
    page.goto(f"{base}/admin/moderation/report/")
    page.get_by_role("link", name="Open in the transcript").click()
    expect(page.locator(".transcript-message:target")).to_contain_text("Reported by")
    page.screenshot(path=OUT / "moderation.png")


def shoot_teams(page: Page, base: str, stub: KimiStub) -> None:
    """A team's page with its library, then an answer from passages of a long manual, with
    its sources."""
    manual = Path(tempfile.mkdtemp()) / "plant-manual.pdf"
    pages = [
        "The Zephyr relief valve opens at 42 bar." if n == 87 else FILLER.format(n=n) * 12
        for n in range(1, MANUAL_PAGES + 1)
    ]
    manual.write_bytes(documents.pdf_bytes(pages))
    page.goto(base + "/teams/")
    page.get_by_label("Team name").fill("Plant Operations")
    page.get_by_role("button", name="New team").click()
    page.get_by_label("Upload to team").set_input_files(str(manual))
    page.get_by_role("button", name="Upload", exact=True).click()
    files = page.get_by_role("list", name="Team files")
    expect(files.get_by_role("status").filter(has_text="Ready")).to_be_visible()
    page.reload()  # without the notice of the upload, as the page is found later
    expect(files.get_by_role("status")).to_have_text(f"Ready · {MANUAL_PAGES} pages")
    page.screenshot(path=OUT / "team.png")
    page.goto(base + "/")
    page.get_by_label("Model").select_option("kimi-k2.6")
    box = page.get_by_role("textbox", name="Message")
    box.fill("@plant-operations At what pressure does the Zephyr relief valve open?")
    stub.script = kimi_says(
        "The Zephyr relief valve opens at **42 bar** [1].",
        "Passage 1 names the Zephyr relief valve and its pressure.",
    )
    box.press("Enter")
    answer = assistant(page)
    expect(answer).to_have_attribute("data-state", "done")
    expect(answer.get_by_role("link", name="plant-manual.pdf, page 87")).to_be_visible()
    page.screenshot(path=OUT / "sources.png")


def shoot_kimi(page: Page, base: str, stub: KimiStub) -> None:
    """Kimi thinking live (held before its answer begins), then an answer from a web search."""
    page.goto(base + "/")
    page.get_by_label("Model").select_option("kimi-k3")
    stub.script = kimi_says(THOUGHT_ANSWER, THOUGHTS)
    stub.hold_stream(0)
    box = page.get_by_role("textbox", name="Message")
    box.fill("What is the difference between a process and a thread?")
    box.press("Enter")
    answer = assistant(page)
    expect(answer.get_by_role("group", name="Thinking")).to_contain_text("coding context.")
    page.screenshot(path=OUT / "thinking.png")
    stub.release()
    expect(answer).to_have_attribute("data-state", "done")
    page.goto(base + "/")
    page.get_by_role("checkbox", name="Web search").check()
    stub.script = kimi_says(SEARCH_ANSWER, "This month's news: search the web first.")
    stub.script.searches = ["Kimi K2.6 release"]
    stub.script.fetches = ["https://platform.kimi.ai/docs/models"]
    box.fill("What did Moonshot AI release this month?")
    box.press("Enter")
    expect(answer).to_have_attribute("data-state", "done")
    expect(answer.locator(".searched")).to_contain_text("Kimi K2.6 release")
    page.screenshot(path=OUT / "web-search.png")


def shoot_looks(browser: Browser, server: Server, stub: KimiStub) -> None:
    """Light and dark, desktop and phone: a streaming answer with math and code, the chat on a
    phone with its drawer and its Settings sheet, the Files and team pages."""
    base = f"http://{server.url}"
    for scheme in ("light", "dark"):
        for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            context = logged_in(
                browser,
                server,
                viewport=viewport,
                locale="en-US",
                color_scheme=scheme,
                has_touch=size == "phone",
            )
            page = context.new_page()
            page.goto(base + "/")
            stub.script = Script(reasoning=[], tokens=words(MATH_ANSWER))
            stub.hold_stream(len(stub.script.tokens) - 1)  # before the last line break
            box = page.get_by_role("textbox", name="Message")
            box.fill("How do I solve a quadratic equation? Show the code too.")
            box.press("Enter")
            answer = assistant(page)
            expect(answer.locator(".body-preview")).to_contain_text("cmath")
            expect(answer.locator(".katex").first).to_be_visible()
            page.screenshot(path=OUT / f"streaming-math-{scheme}-{size}.png")
            stub.release()
            expect(answer).to_have_attribute("data-state", "done")
            if size == "phone":
                shoot_phone(page, scheme)
            page.goto(base + "/files/")
            expect(page.get_by_role("status").filter(has_text="Ready")).to_have_count(2)
            page.screenshot(path=OUT / f"files-{scheme}-{size}.png")
            page.goto(base + "/teams/")
            page.get_by_role("link", name="Plant Operations").click()
            expect(page.get_by_role("heading", name="Plant Operations")).to_be_visible()
            page.screenshot(path=OUT / f"team-{scheme}-{size}.png")
            context.close()


def shoot_phone(page: Page, scheme: str) -> None:
    """The Settings sheet, then the Conversations drawer, once each has slid in."""
    page.get_by_text("Settings", exact=True).click()
    expect(page.get_by_role("button", name="Done")).to_be_in_viewport()
    page.screenshot(path=OUT / f"phone-settings-{scheme}.png")
    page.get_by_role("button", name="Done").click()
    page.get_by_role("button", name="Conversations").click()
    slid_in = "() => getComputedStyle(document.getElementById('sidebar')).transform"
    page.wait_for_function(slid_in + " === 'none'")
    page.screenshot(path=OUT / f"phone-drawer-{scheme}.png")


def main() -> None:
    with serving() as (server, stub, browser):
        base = f"http://{server.url}"
        page = logged_in(browser, server, locale="en-US").new_page()
        chat_url = shoot_chat(page, base, stub)
        shoot_files(page, base, stub)
        shoot_moderation(page, base, chat_url)
        shoot_teams(page, base, stub)
        shoot_kimi(page, base, stub)
        shoot_looks(browser, server, stub)
        login = browser.new_page(viewport=DESKTOP, locale="en-US")
        login.goto(base + "/accounts/login/")
        expect(login.get_by_role("button", name="Log in")).to_be_visible()
        login.screenshot(path=OUT / "login.png")


if __name__ == "__main__":
    main()
