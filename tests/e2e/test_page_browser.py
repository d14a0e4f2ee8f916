"""The page people live in: a phone's width, dark mode, and buttons that keep working after the
thread changes under them."""

import re
import sqlite3
from datetime import UTC, datetime, timedelta

from playwright.sync_api import Page, expect

from tests.e2e.conftest import log_in
from tests.helpers.browser import RICH, answer_done, send
from tests.helpers.kimi_stub import Script

PHONE = {"width": 390, "height": 844}

# A long code line and a wide table: both must scroll inside themselves on a phone.
WIDE_ANSWER = [
    "Here:\n\n```python\n",
    "print('" + "x" * 200 + "')\n",
    "```\n\n| a | b | c | d | e | f |\n|---|---|---|---|---|---|\n",
    "| " + " | ".join(["a-rather-long-cell-value"] * 6) + " |\n",
]

OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"


PASSWORD = "a-long-Passphrase-42"


def user_page(browser, server: str, username: str | None = None, **options) -> Page:
    """A page logged in as alice or, given a username, as a user signed up now (for a test
    that needs a list of its own, or acts on the user). Sign-ups are few: allauth allows 20
    a minute from one address."""
    context = browser.new_context(base_url=server, locale="en-US", **options)
    page = context.new_page()
    if username is None:
        log_in(page, server)
        return page
    page.goto("/accounts/signup/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password confirmation").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url(server + "/")
    return page


def log_in_as(page: Page, username: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/$"))


def phone_page(browser, server: str, username: str | None = None, **options) -> Page:
    return user_page(browser, server, username, viewport=PHONE, has_touch=True, **options)


def fits(page: Page) -> None:
    assert page.evaluate(OVERFLOW) <= 0, f"{page.url} is wider than the screen"


def in_view(page: Page, locator) -> None:
    """On the screen: not cut off at either side or below."""
    expect(locator).to_be_visible()
    box = locator.bounding_box()
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 0.5, box
    assert box["y"] + box["height"] <= PHONE["height"] + 0.5, box


def test_every_page_fits_a_phone(browser, server, kimi):
    page = phone_page(browser, server)
    kimi.script = Script(tokens=WIDE_ANSWER)
    # A long question: the chat's title is its first line.
    send(page, "Show me code and a table, with a question long enough to overflow the header")
    answer = answer_done(page, "a-rather-long-cell-value")
    fits(page)
    # The code block scrolls inside itself.
    assert answer.locator("pre").evaluate("e => e.scrollWidth > e.clientWidth")
    for name in ("Rename", "Export", "Delete"):
        in_view(page, page.locator(".conversation-head").get_by_text(name, exact=True))
    in_view(page, page.get_by_role("button", name="Send"))
    in_view(page, page.get_by_role("textbox", name="Message"))

    page.get_by_role("link", name="Teams").click()
    page.get_by_label("Team name").fill("Phone Crew")
    page.get_by_role("button", name="New team").click()
    expect(page.get_by_role("heading", name="Phone Crew")).to_be_visible()
    fits(page)
    in_view(page, page.get_by_role("button", name="Upload", exact=True))
    for path in ("/files/", "/teams/", "/accounts/preferences/"):
        page.goto(path)
        fits(page)
    in_view(page, page.get_by_role("button", name="Save preferences"))

    page.context.clear_cookies()
    for path in ("/accounts/login/", "/accounts/signup/"):
        page.goto(path)
        fits(page)
    page.context.close()


def test_on_a_phone_the_conversations_are_a_drawer(browser, server, kimi):
    page = phone_page(browser, server)
    send(page, "Remember the drawer")
    answer_done(page, "Hello from the Kimi stub.")
    page.goto("/")
    conversations = page.get_by_role("navigation", name="Conversations")
    expect(conversations).to_be_hidden()

    toggle = page.get_by_role("button", name="Conversations")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.click()
    expect(conversations).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("Escape")
    expect(conversations).to_be_hidden()

    toggle.click()
    conversations.get_by_role("link", name="Remember the drawer").click()
    expect(page).to_have_url(re.compile(r"/c/\d+/$"))
    expect(page.locator('article[data-role="user"]')).to_contain_text("Remember the drawer")
    expect(conversations).to_be_hidden()
    fits(page)
    page.context.close()


def test_on_a_phone_settings_are_a_sheet_and_controls_are_big_enough(browser, server, kimi):
    page = phone_page(browser, server)
    page.get_by_text("Settings", exact=True).click()
    sheet = page.locator("#settings")
    system = page.get_by_label("System prompt")
    in_view(page, system)
    fits(page)
    page.get_by_role("button", name="Done").click()
    expect(system).to_be_hidden()

    composer = page.locator("#composer")
    for control in (
        composer.get_by_role("button", name="Send"),
        composer.get_by_label("Model"),
        composer.get_by_text("Settings", exact=True),
        composer.locator(".attach"),
        page.get_by_role("button", name="Conversations"),
    ):
        in_view(page, control)
        box = control.bounding_box()
        assert box is not None and box["height"] >= 44, (control, box)
    assert sheet.count() == 1
    page.context.close()


def _background(page: Page) -> str:
    return page.evaluate("() => getComputedStyle(document.body).backgroundColor")


def _is_dark(colour: str) -> bool:
    red, green, blue = (int(n) for n in re.findall(r"\d+", colour)[:3])
    return (red + green + blue) / 3 < 80


def test_dark_mode_follows_the_system_and_a_saved_choice(browser, server, kimi):
    page = user_page(browser, server, "sven", color_scheme="dark")
    kimi.script = Script(tokens=["```python\n", "def f():\n    return 'dark'\n", "```\n"])
    send(page, "Code in the dark")
    answer = answer_done(page, "return")
    assert _is_dark(_background(page))
    # Highlighted code keeps a dark background and light text.
    pre = answer.locator("pre")
    assert _is_dark(pre.evaluate("e => getComputedStyle(e).backgroundColor"))
    assert not _is_dark(pre.locator(".k").first.evaluate("e => getComputedStyle(e).color"))

    # A saved Light wins over the system's dark, on every page.
    page.goto("/accounts/preferences/")
    page.get_by_role("radio", name="Light").check()
    page.get_by_role("button", name="Save preferences").click()
    expect(page.get_by_role("status")).to_contain_text("Preferences saved.")
    assert not _is_dark(_background(page))
    page.goto("/files/")
    assert not _is_dark(_background(page))
    page.context.close()

    # And a saved Dark wins over the system's light.
    context = browser.new_context(base_url=server, locale="en-US", color_scheme="light")
    page = context.new_page()
    log_in_as(page, "sven")
    assert not _is_dark(_background(page))
    page.goto("/accounts/preferences/")
    expect(page.get_by_role("radio", name="Light")).to_be_checked()
    page.get_by_role("radio", name="Dark").check()
    page.get_by_role("button", name="Save preferences").click()
    expect(page.get_by_role("radio", name="Dark")).to_be_checked()
    page.goto("/")
    assert _is_dark(_background(page))
    context.close()


def _buttons_answer(page: Page, text: str) -> None:
    """Copy, Edit and Report answer on the thread as it is now, and the thread stays at its
    end, where the reader was."""
    page.wait_for_function(
        "() => { const e = document.getElementById('messages');"
        " return e.scrollTop > 0 && e.scrollHeight - e.scrollTop - e.clientHeight < 80; }"
    )

    answer = page.locator('article[data-role="assistant"]').last
    answer.get_by_role("button", name="Copy").click()
    expect(answer.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()").startswith(text)

    question = page.locator('article[data-role="user"]').first
    question.get_by_role("button", name="Edit").click()
    expect(question.get_by_role("textbox", name="Edit message")).to_be_focused()
    question.get_by_role("button", name="Cancel").click()
    expect(question.get_by_role("textbox", name="Edit message")).to_be_hidden()

    answer.get_by_role("button", name="Report").click()
    dialog = page.get_by_role("dialog", name="Report this message")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()


def test_copy_edit_and_report_keep_working_after_the_thread_changes(browser, server, kimi):
    # A user of its own: the messages per minute allowed are per user.
    page = user_page(browser, server)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    for n in range(3):  # a thread long enough to scroll
        kimi.script = Script(tokens=[f"Answer {n}. " + "Many words here. " * 80])
        send(page, f"Question {n}")
        answer_done(page, f"Answer {n}.")

    kimi.script = Script(tokens=["Fresh", " take"])
    page.locator('article[data-role="assistant"]').last.get_by_role(
        "button", name="Regenerate"
    ).click()
    answer_done(page, "Fresh take")
    _buttons_answer(page, "Fresh take")

    page.locator('article[data-role="assistant"]').last.get_by_role(
        "group", name="Versions"
    ).get_by_role("button", name="Previous version").click()
    answer_done(page, "Answer 2.")
    _buttons_answer(page, "Answer 2.")

    kimi.script = Script(tokens=["Edited", " answer"])
    question = page.locator('article[data-role="user"]').last
    question.get_by_role("button", name="Edit").click()
    question.get_by_role("textbox", name="Edit message").fill("Question again")
    question.get_by_role("button", name="Save and send").click()
    answer_done(page, "Edited answer")
    _buttons_answer(page, "Edited answer")
    page.context.close()


def test_a_failed_answers_copy_copies_its_reason(browser, server, kimi):
    page = user_page(browser, server)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    kimi.script = Script(status=500)
    send(page, "Hello?")
    failed = page.locator('article[data-role="assistant"]').last
    expect(failed).to_have_attribute("data-state", "error")
    failed.get_by_role("button", name="Copy").click()
    expect(failed.get_by_role("button", name="Copied")).to_be_visible()
    assert "Kimi had an internal error" in page.evaluate("navigator.clipboard.readText()")


def test_log_in_page_follows_the_system_theme(browser, server):
    context = browser.new_context(base_url=server, locale="en-US", color_scheme="dark")
    page = context.new_page()
    page.goto("/accounts/login/")
    assert _is_dark(_background(page))
    log_in(page, server)
    context.close()


def _moderator(browser, server: str) -> Page:
    context = browser.new_context(base_url=server, locale="en-US")
    page = context.new_page()
    log_in(page, server)  # alice is a superuser
    return page


def _admin_action(moderator: Page, changelist: str, search: str, action: str) -> None:
    moderator.goto(changelist + "?q=" + search)
    rows = moderator.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    rows.first.locator("input[name=_selected_action]").check()
    moderator.get_by_label("Action:").select_option(label=action)
    moderator.get_by_role("button", name="Go").click()


def test_a_hidden_chat_leaves_every_page_of_its_owner_live(browser, server, kimi):
    owner = user_page(browser, server, "gail")
    kimi.script = Script(tokens=["Ahoy"])
    send(owner, "Pirate plans")
    answer_done(owner, "Ahoy")
    chat_url = owner.url
    other = owner.context.new_page()  # the owner's other tab, on a new chat
    other.goto("/")
    sidebar = other.get_by_role("navigation", name="Conversations")
    expect(sidebar.get_by_role("link", name="Pirate plans")).to_be_visible()

    moderator = _moderator(browser, server)
    _admin_action(
        moderator, "/admin/conversations/conversation/", "Pirate", "Hide selected conversations"
    )
    expect(moderator.get_by_text("1 conversation hidden.")).to_be_visible()

    # The chat's own page: title, Rename, Export and the list entry go; Delete stays.
    head = owner.locator("#conversation-head")
    expect(head.get_by_role("heading")).to_have_text("Removed by a moderator")
    expect(head.get_by_text("Rename")).to_have_count(0)
    expect(head.get_by_role("link", name="Export")).to_have_count(0)
    expect(head.get_by_role("link", name="Delete")).to_be_visible()
    mine = owner.get_by_role("navigation", name="Conversations")
    expect(mine.get_by_role("link", name="Pirate plans")).to_have_count(0)
    expect(owner).to_have_url(chat_url)
    # The other tab's list too.
    expect(sidebar.get_by_role("link", name="Pirate plans")).to_have_count(0)
    expect(sidebar.get_by_role("link", name="Removed by a moderator")).to_be_visible()
    owner.context.close()
    moderator.context.close()


def test_a_suspended_users_page_stops_streaming_live(browser, server, kimi):
    user = user_page(browser, server, "hank")
    kimi.script = Script(tokens=["Going", " on"] + [" and on"] * 200, stall_after=2)
    send(user, "Talk forever")
    expect(user.get_by_role("button", name="Stop")).to_be_visible()

    moderator = _moderator(browser, server)
    _admin_action(moderator, "/admin/auth/user/", "hank", "Suspend selected users")

    expect(user.get_by_role("alert").filter(has_text="Your account is suspended.")).to_be_visible()
    expect(user.get_by_role("button", name="Stop")).to_be_hidden()
    expect(user.get_by_role("textbox", name="Message")).to_be_hidden()
    caret = "e => getComputedStyle(e, '::after').content"
    for part in (".body.streaming", ".body-preview"):
        assert user.locator(part).evaluate(caret) in ("none", "normal"), part
    user.context.close()
    moderator.context.close()


def test_share_is_offered_on_a_brand_new_chat(browser, server, kimi):
    page = user_page(browser, server)
    page.goto("/teams/")
    page.get_by_label("Team name").fill("Ivy League")
    page.get_by_role("button", name="New team").click()
    expect(page.get_by_role("heading", name="Ivy League")).to_be_visible()
    page.goto("/")
    send(page, "Share me")
    answer_done(page, "Hello from the Kimi stub.")
    share = page.locator("#conversation-head").get_by_text("Share", exact=True)
    share.click()
    page.get_by_label("Share with team").select_option(label="Ivy League")
    page.locator("#conversation-head .share").get_by_role("button", name="Save").click()
    expect(page.locator("#conversation-head")).to_contain_text("Shared with Ivy League")
    page.context.close()


def test_report_is_remembered_and_only_offered_on_answers(browser, server, kimi):
    page = user_page(browser, server, "jude")
    send(page, "Say something odd")
    answer = answer_done(page, "Hello from the Kimi stub.")
    question = page.locator('article[data-role="user"]')
    expect(question.get_by_role("button", name="Report")).to_have_count(0)
    answer.get_by_role("button", name="Report").click()
    dialog = page.get_by_role("dialog", name="Report this message")
    dialog.get_by_label("Reason").fill("Odd")
    dialog.get_by_role("button", name="Send report").click()
    expect(answer.get_by_role("button", name="Reported")).to_be_disabled()
    page.reload()
    expect(answer.get_by_role("button", name="Reported")).to_be_disabled()
    expect(answer.get_by_role("button", name="Report", exact=True)).to_have_count(0)
    page.context.close()


def test_a_refused_attachment_is_removed_by_its_name(page: Page, tmp_path):
    big = tmp_path / "huge.txt"
    big.write_text("x")
    page.locator("#composer").evaluate("f => { f.dataset.maxBytes = '0'; }")
    page.get_by_label("Attach files").set_input_files(str(big))
    remove = page.get_by_role("button", name="Remove huge.txt")
    expect(remove).to_be_visible()
    remove.click()
    expect(page.locator("#attachments")).not_to_contain_text("huge.txt")


def test_the_admin_links_an_uploaded_file_to_a_download_that_works(page: Page, tmp_path):
    notes = tmp_path / "admin-notes.txt"
    notes.write_text("Notes for the admin.")
    page.goto("/files/")
    page.get_by_label("Upload files").set_input_files(str(notes))
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.get_by_role("list", name="Files")).to_contain_text("admin-notes.txt")
    page.goto("/admin/uploads/uploadedfile/?q=admin-notes")
    page.locator("#result_list tbody tr").first.get_by_role("link").first.click()
    link = page.get_by_role("link", name="admin-notes.txt")
    assert "/media/" not in (link.get_attribute("href") or "")
    with page.expect_download() as download:
        link.click()
    assert open(download.value.path()).read() == "Notes for the admin."


def test_the_usage_tables_total_column_is_on_screen_at_1280(page: Page, kimi):
    send(page, "Count me")
    answer_done(page, "Hello from the Kimi stub.")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto("/admin/accounts/usage/")
    total = page.locator("#result_list thead th").filter(
        has_text=re.compile(r"^\s*Total\s*$", re.I)
    )
    expect(total).to_be_visible()
    # Not scrolled out of the table's box (which scrolls sideways when too narrow).
    right = total.evaluate("e => e.getBoundingClientRect().right")
    visible = page.locator(".results").evaluate("e => e.getBoundingClientRect().right")
    assert right <= visible <= 1280, (right, visible)
    assert page.locator(".results").evaluate("e => e.scrollWidth <= e.clientWidth")


def _rich_answer_looks_right(page: Page, answer, where: str) -> None:
    """Math typeset by KaTeX, code with its language and Copy code, a table aligned by class,
    a task list, an image as a link; nothing fetched, no HTML from the model."""
    expect(answer.locator(".katex").first).to_be_visible()
    expect(answer.locator(".katex-display")).to_have_count(1)
    expect(answer.locator(".code-language")).to_have_text("python")
    answer.get_by_role("button", name="Copy code").click()
    expect(answer.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()").strip() == "print('hi')", where
    expect(answer.locator("td.align-right")).to_have_text("2")
    expect(answer.get_by_role("checkbox", name="done")).to_be_checked()
    expect(answer.get_by_role("link", name="a cat")).to_have_attribute(
        "href", "https://example.com/cat.png"
    )
    assert answer.locator("img").count() == 0, where
    assert answer.locator("[style]:not(.katex *)").count() == 0, where


def test_answers_render_markdown_and_math_while_streaming_and_after(browser, server, kimi):
    page = user_page(browser, server)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    kimi.script = Script(tokens=RICH + [" more"] * 50, stall_after=len(RICH))
    send(page, "Show me everything")
    answer = page.locator('article[data-role="assistant"]').last
    expect(answer).to_have_attribute("data-state", "streaming")
    expect(answer.locator(".body-preview")).to_contain_text("still")
    _rich_answer_looks_right(page, answer, "streaming")
    expect(answer.locator(".body-preview")).to_contain_text("<img src=x onerror=alert(1)>")

    page.get_by_role("button", name="Stop").click()
    expect(answer).to_have_attribute("data-state", "stopped")
    expect(answer.locator(".body-preview")).to_have_count(0)  # the server's render now
    _rich_answer_looks_right(page, answer, "final")

    page.reload()
    _rich_answer_looks_right(page, answer, "reloaded")
    assert not [url for url in requests if "example.com" in url]


def test_keyboard_esc_stops_ctrl_k_searches_ctrl_shift_o_starts_a_new_chat(browser, server, kimi):
    page = user_page(browser, server)
    kimi.script = Script(tokens=["Going", " on"] + [" and on"] * 200, stall_after=2)
    send(page, "Keep talking")
    answer = page.locator('article[data-role="assistant"]').last
    composer = page.locator("#composer")
    # Stop takes Send's place in the composer.
    expect(composer.get_by_role("button", name="Stop")).to_be_visible()
    expect(composer.get_by_role("button", name="Send")).to_be_hidden()
    page.keyboard.press("Escape")
    expect(answer).to_have_attribute("data-state", "stopped")
    expect(composer.get_by_role("button", name="Send")).to_be_visible()
    expect(composer.get_by_role("button", name="Stop")).to_be_hidden()

    page.keyboard.press("Control+k")
    expect(page.get_by_role("searchbox", name="Search conversations")).to_be_focused()
    page.keyboard.press("Control+Shift+O")
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator("article")).to_have_count(0)


def test_each_message_carries_its_time(browser, server, kimi):
    page = user_page(browser, server, timezone_id="Asia/Shanghai")
    send(page, "What time is it?")
    answer_done(page, "Hello from the Kimi stub.")
    for article in (page.locator("article").first, page.locator("article").last):
        time = article.locator("time")
        stamp = time.get_attribute("datetime")
        assert stamp
        shown = page.evaluate(
            "s => new Date(s).toLocaleTimeString('en', {hour: '2-digit', minute: '2-digit'})",
            stamp,
        )
        expect(time).to_have_text(shown)  # in the browser's time zone, not UTC
        assert "GMT+8" in (time.get_attribute("title") or "")  # the full date, local
    page.reload()
    expect(page.locator("article").first.locator("time")).to_have_attribute(
        "title", re.compile("20")
    )
    page.context.close()


def _add_conversations(tmp_path_factory, username: str, ages: list[float]) -> None:
    """Conversations of `username`, last written to `ages` days ago, put straight into the
    e2e server's database (copies of the user's one conversation made through the page)."""
    (db,) = [p for p in tmp_path_factory.getbasetemp().glob("e2e0/db.sqlite3")]
    now = datetime.now(UTC)
    with sqlite3.connect(db, timeout=20) as connection:
        columns = [
            row[1] for row in connection.execute("pragma table_info(conversations_conversation)")
        ]
        copied = [c for c in columns if c not in ("id", "title", "updated_at", "leaf_id")]
        (owner,) = connection.execute(
            "select id from auth_user where username = ?", [username]
        ).fetchone()
        (source,) = connection.execute(
            "select id from conversations_conversation where owner_id = ?", [owner]
        ).fetchone()
        for n, age in enumerate(ages):
            when = (now - timedelta(days=age)).strftime("%Y-%m-%d %H:%M:%S.%f")
            connection.execute(
                f"insert into conversations_conversation ({', '.join(copied)}, title, updated_at)"
                f" select {', '.join(copied)}, ?, ? from conversations_conversation where id = ?",
                [f"Old chat {n}", when, source],
            )


def test_the_list_is_grouped_by_day_and_loads_more_as_it_scrolls(
    browser, server, kimi, tmp_path_factory
):
    page = user_page(browser, server, "lena")
    send(page, "Fresh today")
    answer_done(page, "Hello from the Kimi stub.")
    _add_conversations(tmp_path_factory, "lena", [1] * 2 + [3] * 5 + [40 + n for n in range(53)])
    page.goto("/")
    conversations = page.get_by_role("navigation", name="Conversations")
    headings = conversations.get_by_role("heading")
    expect(headings).to_have_text(["Today", "Yesterday", "Previous 7 days", "Older"])
    links = conversations.get_by_role("link", name=re.compile(r"^(Old chat|Fresh today)"))
    expect(links).to_have_count(50)  # one page; the rest as the list is scrolled
    conversations.get_by_text("Loading…").scroll_into_view_if_needed()  # the end of the list
    expect(links).to_have_count(61)
    expect(conversations.get_by_role("link", name="Old chat 59", exact=True)).to_be_attached()
    expect(headings).to_have_text(["Today", "Yesterday", "Previous 7 days", "Older"])
    page.context.close()


def test_pin_and_archive(browser, server, kimi):
    page = user_page(browser, server, "mona")
    for text in ("First chat", "Second chat"):
        page.goto("/")
        send(page, text)
        answer_done(page, "Hello from the Kimi stub.")
    conversations = page.get_by_role("navigation", name="Conversations")
    names = conversations.locator("li[data-updated] a")
    expect(names).to_have_text(["Second chat", "First chat"])

    conversations.get_by_role("link", name="First chat").click()
    page.locator("#conversation-head").get_by_role("button", name="Pin").click()
    expect(page.locator("#conversation-head").get_by_role("button", name="Unpin")).to_be_visible()
    expect(names).to_have_text(["First chat", "Second chat"])
    expect(conversations.get_by_role("heading")).to_have_text(["Pinned", "Today"])

    page.locator("#conversation-head").get_by_role("button", name="Archive").click()
    expect(
        page.locator("#conversation-head").get_by_role("button", name="Unarchive")
    ).to_be_visible()
    expect(names).to_have_text(["Second chat"])
    conversations.get_by_role("link", name="Archived").click()
    expect(conversations.get_by_role("heading", name="Archived")).to_be_visible()
    expect(names).to_have_text(["First chat"])
    conversations.get_by_role("link", name="First chat").click()
    page.locator("#conversation-head").get_by_role("button", name="Unarchive").click()
    expect(page.locator("#conversation-head").get_by_role("button", name="Archive")).to_be_visible()
    expect(names).to_have_text(["Second chat", "First chat"])  # back in its place by date
    page.context.close()


def test_team_uploads_show_progress_and_their_status_live(browser, server, kimi, tmp_path):
    page = user_page(browser, server)
    page.goto("/teams/")
    page.get_by_label("Team name").fill("Yara's Crew")
    page.get_by_role("button", name="New team").click()
    expect(page.get_by_role("heading", name="Yara's Crew")).to_be_visible()
    page.evaluate("window.stayed = true")  # gone if the page reloads
    manual = tmp_path / "crew-manual.txt"
    manual.write_text("Check the valves every morning.")
    uploads: list[str] = []
    page.on("request", lambda request: uploads.append(request.url))
    page.get_by_label("Upload to team").set_input_files(str(manual))
    page.get_by_role("button", name="Upload", exact=True).click()
    files = page.get_by_role("list", name="Team files")
    expect(files.get_by_role("status").filter(has_text="Ready")).to_be_visible()
    expect(files).to_contain_text("crew-manual.txt")
    expect(page.get_by_role("status").filter(has_text="Uploaded: crew-manual.txt")).to_be_visible()
    assert page.evaluate("window.stayed === true")
    assert page.get_by_label("Upload to team").input_value() == ""  # ready for the next
    assert page.locator(".upload-progress").is_hidden()
    assert any(url.endswith("/files/upload/") for url in uploads)
    page.reload()
    expect(files).to_contain_text("crew-manual.txt")
    page.context.close()


def test_a_new_chat_goes_below_the_pinned_ones_under_one_today(browser, server, kimi):
    page = user_page(browser, server, "nina")
    send(page, "Pinned chat")
    answer_done(page, "Hello from the Kimi stub.")
    page.locator("#conversation-head").get_by_role("button", name="Pin").click()
    expect(page.locator("#conversation-head").get_by_role("button", name="Unpin")).to_be_visible()

    page.get_by_role("link", name="New chat").click()
    send(page, "Fresh chat")
    answer_done(page, "Hello from the Kimi stub.")
    conversations = page.get_by_role("navigation", name="Conversations")
    expect(conversations.locator("li[data-updated] a")).to_have_text(["Pinned chat", "Fresh chat"])
    expect(conversations.get_by_role("heading")).to_have_text(["Pinned", "Today"])
    page.context.close()


# Math and code: laid out (KaTeX, the code bars) after the page has opened at its end.
MATH_AND_CODE = [
    "Euler:\n\n$$e^{i\\pi} + 1 = 0$$\n\n",
    "$$\\sum_{n=1}^{\\infty} \\frac{1}{n^2} = \\frac{\\pi^2}{6}$$\n\n",
    "```python\nprint('hello')\nprint('world')\n```\n\n",
    "$$\\int_0^1 x^2\\,dx = \\frac{1}{3}$$\n\nDone.",
]


def test_a_chat_with_math_and_code_opens_at_its_very_end(browser, server, kimi):
    page = user_page(browser, server)
    kimi.script = Script(tokens=MATH_AND_CODE)
    for n in range(3):
        send(page, f"Math and code, part {n}")
        answer_done(page, "Done.")
        expect(page.locator('article[data-role="assistant"]')).to_have_count(n + 1)
    page.reload()
    last = page.locator('article[data-role="assistant"]').last
    expect(last.locator(".katex").first).to_be_visible()
    expect(last.get_by_role("button", name="Regenerate")).to_be_in_viewport()
    # Once everything is laid out (fonts too), the thread is scrolled to its very end.
    page.wait_for_function(
        "() => document.fonts.status === 'loaded' && (m => m.scrollHeight - m.scrollTop"
        " - m.clientHeight < 2)(document.getElementById('messages'))"
    )
    page.context.close()


# Every console error and Content-Security-Policy violation on the page, from its start.
WATCH_CONSOLE = """
window.addEventListener("securitypolicyviolation", e =>
  console.error("CSP violation: " + e.violatedDirective + " " + (e.sample || "")));
"""


def test_chatting_and_reporting_leave_no_error_in_the_console(browser, server, kimi):
    page = user_page(browser, server)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.context.add_init_script(WATCH_CONSOLE)
    page.goto("/")
    send(page, "First")
    answer_done(page, "Hello from the Kimi stub.")
    send(page, "Second")
    expect(page.locator('article[data-role="assistant"]')).to_have_count(2)
    answer = answer_done(page, "Hello from the Kimi stub.")
    answer.get_by_role("button", name="Report").click()
    dialog = page.get_by_role("dialog", name="Report this message")
    dialog.get_by_label("Reason").fill("Odd")
    dialog.get_by_role("button", name="Send report").click()
    expect(answer.get_by_role("button", name="Reported")).to_be_disabled()

    # An answer that failed before a word has nothing to report: Retry only.
    kimi.script = Script(status=401)
    send(page, "Third")
    failed = page.locator('article[data-role="assistant"]').last
    expect(failed).to_have_attribute("data-state", "error")
    expect(failed.get_by_role("button", name="Retry")).to_be_visible()
    expect(failed.get_by_role("button", name="Report")).to_have_count(0)
    page.reload()
    expect(failed.get_by_role("button", name="Retry")).to_be_visible()
    expect(failed.get_by_role("button", name="Report")).to_have_count(0)
    assert errors == []
    page.context.close()
