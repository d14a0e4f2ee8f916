"""In Chromium, on a server without e-mail: signing up leaves no "Successfully signed in" for a
later page, Change password offers no reset link that would lead to a 404 (it says who resets
a password), and a changed password is confirmed on the Account page, once."""

from playwright.sync_api import Page, expect

PASSWORD = "a-long-Passphrase-42"
NEW = "another-Passphrase-43"


def test_notices_show_where_they_belong_and_no_reset_link_leads_nowhere(browser, server):
    context = browser.new_context(base_url=server, locale="en-US")
    page: Page = context.new_page()
    page.goto("/accounts/signup/")
    page.get_by_label("Username").fill("fay")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password confirmation").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url(server + "/")
    for link in ("Files", "Teams", "Account"):
        page.get_by_role("link", name=link, exact=True).click()
        expect(page.locator("h1")).to_be_visible()
        expect(page.get_by_text("Successfully signed in")).to_have_count(0)

    page.get_by_role("link", name="Change password").click()
    expect(page.get_by_role("link", name="Forgot password?")).to_have_count(0)
    expect(page.get_by_text("ask an administrator to reset it")).to_be_visible()
    page.get_by_label("Current Password").fill(PASSWORD)
    page.get_by_label("New Password", exact=True).fill(NEW)
    page.get_by_label("New Password (again)").fill(NEW)
    page.get_by_role("button", name="Change password").click()
    page.wait_for_url(server + "/accounts/")
    expect(page.get_by_role("status").filter(has_text="Your password is changed.")).to_be_visible()
    page.get_by_role("link", name="Files", exact=True).click()
    expect(page.locator("h1")).to_have_text("Files")
    expect(page.get_by_text("Your password is changed.")).to_have_count(0)
    context.close()
