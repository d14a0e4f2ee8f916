"""In a browser: a session that ends closes the sockets of its open pages, and a name with a
control character is refused where it is typed."""

from playwright.sync_api import Page, expect

from tests.helpers.browser import send

# Before the page's scripts run: how its socket's life goes, as promises to wait on.
WATCH_SOCKET = """
window.socketOpen = new Promise((done) =>
  document.addEventListener("htmx:wsOpen", () => done(true), { once: true }));
window.socketClosed = new Promise((done) =>
  document.addEventListener("htmx:wsClose", (e) => done(e.detail.event.code), { once: true }));
"""

CLOSED_OR_STILL_OPEN = """Promise.race([window.socketClosed,
  new Promise((done) => setTimeout(() => done("still open"), 20000))])"""


def test_logging_out_in_one_tab_closes_the_socket_of_another(page: Page, server):
    chat = page.context.new_page()
    chat.add_init_script(WATCH_SOCKET)
    chat.goto(server + "/")
    assert chat.evaluate("window.socketOpen")

    # Another tab of the same browser logs out.
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(server + "/accounts/login/")

    # The chat tab's socket is closed as a logged-out one's (it does not reconnect). (The
    # bound only turns a socket left open into a failure instead of a wait without end.)
    assert chat.evaluate(CLOSED_OR_STILL_OPEN) == 4401


def test_a_title_with_a_right_to_left_override_is_refused(page: Page, kimi):
    send(page, "Quarterly numbers")
    expect(page.locator('article[data-role="assistant"]')).to_have_attribute("data-state", "done")
    page.get_by_text("Rename").click()
    page.get_by_role("textbox", name="Title").fill("Q3\u202e report")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text(
        "A name cannot contain control characters, such as NUL or a right-to-left override."
    )
    expect(page.locator("#conversation-title")).to_have_text("Quarterly numbers")
