"""A report, read by a moderator in the admin, ends with the conversation hidden from its owner
and from the copies made of it."""

import re

from playwright.sync_api import expect

from tests.e2e.conftest import log_in
from tests.e2e.test_teams_browser import sign_up
from tests.helpers.browser import answer_done, send
from tests.helpers.kimi_stub import Script


def test_a_reported_conversation_is_found_read_and_hidden(browser, server, kimi):
    owner_context = browser.new_context(base_url=server, locale="en-US")
    owner = owner_context.new_page()
    owner.goto("/accounts/signup/")
    owner.get_by_label("Username").fill("dana")
    owner.get_by_label("Password", exact=True).fill("a-long-Passphrase-42")
    owner.get_by_label("Password confirmation").fill("a-long-Passphrase-42")
    owner.get_by_role("button", name="Sign up").click()
    owner.wait_for_url(server + "/")
    kimi.script = Script(tokens=["Meet", " at", " dawn"])
    send(owner, "Plan the secret heist")
    answer = answer_done(owner, "Meet at dawn")

    answer.get_by_role("button", name="Report").click()
    dialog = owner.get_by_role("dialog", name="Report this message")
    dialog.get_by_label("Reason").fill("Plans a crime")
    dialog.get_by_role("button", name="Send report").click()
    expect(dialog).to_be_hidden()
    expect(answer.get_by_role("button", name="Reported")).to_be_disabled()
    expect(owner.get_by_role("status").filter(has_text="A moderator will look")).to_be_visible()

    moderator_context = browser.new_context(base_url=server, locale="en-US")
    moderator = moderator_context.new_page()
    log_in(moderator, server)
    moderator.goto("/admin/moderation/report/?status=open")
    expect(moderator.get_by_text("Plans a crime")).to_be_visible()
    # Other tests report messages on the same server: this report's row.
    row = moderator.locator("#result_list tr").filter(has_text="Plans a crime")
    row.get_by_role("link", name="Open in the transcript").click()
    transcript = moderator.locator(".transcript")
    expect(transcript).to_contain_text("Plan the secret heist")
    expect(transcript).to_contain_text("Reported by dana (open): “Plans a crime”")

    moderator.goto("/admin/conversations/conversation/")
    search = moderator.locator("#changelist-search")
    search.get_by_role("textbox").fill("secret heist")
    search.get_by_role("button", name="Search").click()
    moderator.wait_for_url(re.compile(r"q=secret\+heist"))
    rows = moderator.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    rows.first.locator("input[name=_selected_action]").check()
    moderator.get_by_label("Action:").select_option(label="Hide selected conversations")
    moderator.get_by_label("Reason:").fill("Planning a crime")
    moderator.get_by_role("button", name="Go").click()
    expect(moderator.get_by_text("1 conversation hidden.")).to_be_visible()

    # The owner's open page is told at once; the text is gone, and stays gone.
    notice = owner.get_by_role("alert").filter(has_text="A moderator removed this conversation")
    expect(notice).to_be_visible()
    expect(owner.locator("#messages")).not_to_contain_text("secret heist")
    expect(owner.get_by_role("textbox", name="Message")).to_be_hidden()
    owner.reload()
    expect(notice).to_be_visible()
    expect(owner.locator("body")).not_to_contain_text("Meet at dawn")
    sidebar = owner.get_by_role("navigation", name="Conversations")
    expect(sidebar.get_by_role("link", name="Removed by a moderator")).to_be_visible()

    moderator.goto("/admin/moderation/moderationaction/")
    expect(moderator.locator("#result_list")).to_contain_text("Planning a crime")
    owner_context.close()
    moderator_context.close()


def test_hiding_a_shared_conversation_reaches_the_copy_a_member_continues_in(browser, server, kimi):
    member = sign_up(browser, server, "gale")
    owner_context = browser.new_context(base_url=server, locale="en-US")
    owner = owner_context.new_page()
    log_in(owner, server)
    owner.goto("/teams/")
    owner.get_by_label("Team name").fill("Picnic Crew")
    owner.get_by_role("button", name="New team").click()
    owner.get_by_label("Username").fill("gale")
    owner.get_by_role("button", name="Add member").click()
    expect(owner.get_by_role("list", name="Members")).to_contain_text("gale")
    owner.goto("/")
    kimi.script = Script(tokens=["Bring", " plums"])
    send(owner, "Plan the smuggling picnic")
    answer_done(owner, "Bring plums")
    owner.wait_for_url(re.compile(r"/c/\d+/$"))
    original = owner.url
    owner.reload()
    owner.get_by_text("Share", exact=True).click()
    owner.get_by_label("Share with team").select_option(label="Picnic Crew")
    owner.get_by_role("button", name="Save").last.click()
    expect(owner.get_by_text("Shared with Picnic Crew")).to_be_visible()

    # The member continues in a copy of their own, and keeps its page open.
    member.goto("/teams/")
    member.get_by_role("link", name="Picnic Crew").click()
    shared = member.get_by_role("list", name="Shared conversations")
    shared.get_by_role("link").first.click()
    member.get_by_role("button", name="Continue in my own copy").click()
    member.wait_for_url(re.compile(r"/c/\d+/$"))
    expect(member.locator("#messages")).to_contain_text("Bring plums")

    # The original is hidden; the copy's page is told at once, and the text is gone from it.
    owner.goto(original.replace("/c/", "/admin/conversations/conversation/") + "change/")
    owner.get_by_role("button", name="Hide this conversation").click()
    notice = member.get_by_role("alert").filter(has_text="A moderator removed this conversation")
    expect(notice).to_be_visible()
    expect(member.locator("#messages")).not_to_contain_text("Bring plums")
    member.reload()
    expect(notice).to_be_visible()
    owner_context.close()
    member.context.close()
