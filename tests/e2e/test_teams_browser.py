"""A team shares a document and a conversation, and a member asks about the library."""

import re

from playwright.sync_api import expect

from tests.e2e.conftest import log_in
from tests.helpers.browser import answer_done, send
from tests.helpers.kimi_stub import Script


def sign_up(browser, server: str, username: str):
    context = browser.new_context(base_url=server, locale="en-US")
    page = context.new_page()
    page.goto("/accounts/signup/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill("a-long-Passphrase-42")
    page.get_by_label("Password confirmation").fill("a-long-Passphrase-42")
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url(server + "/")
    return page


def test_a_team_shares_and_questions_its_documents(browser, server, kimi, tmp_path):
    member = sign_up(browser, server, "erin")
    owner_context = browser.new_context(base_url=server, locale="en-US")
    owner = owner_context.new_page()
    log_in(owner, server)

    owner.get_by_role("link", name="Teams").click()
    owner.get_by_label("Team name").fill("Pump Crew")
    owner.get_by_role("button", name="New team").click()
    expect(owner.get_by_role("heading", name="Pump Crew")).to_be_visible()
    owner.get_by_label("Username").fill("erin")
    owner.get_by_role("button", name="Add member").click()
    expect(owner.get_by_role("list", name="Members")).to_contain_text("erin")
    manual = tmp_path / "pump-manual.txt"
    manual.write_text("The Zephyr relief valve opens at 42 bar.")
    owner.get_by_label("Upload to team").set_input_files(str(manual))
    owner.get_by_role("button", name="Upload", exact=True).click()
    files = owner.get_by_role("list", name="Team files")
    expect(files).to_contain_text("pump-manual.txt")
    expect(files).to_contain_text("by alice")
    expect(files.get_by_role("status").filter(has_text="Ready")).to_be_visible()

    # The member finds the library in the `@` suggestions, marked, and asks across it.
    box = member.get_by_role("textbox", name="Message")
    box.press_sequentially("@pump")
    suggestions = member.get_by_role("listbox", name="File suggestions")
    expect(suggestions).to_contain_text("Pump Crew")
    expect(suggestions).to_contain_text("Team library · 1 file")
    expect(suggestions).to_contain_text("Team Pump Crew")
    kimi.script = Script(tokens=["It", " opens", " at", " 42", " bar."])
    box.fill("@pump-crew When does the relief valve open?")
    box.press("Enter")
    answer_done(member, "It opens at 42 bar.")
    system = [m["content"] for m in kimi.streams[-1].body["messages"] if m["role"] == "system"]
    assert system == [
        "Document “pump-manual.txt” (attached by the user):\n\n"
        "The Zephyr relief valve opens at 42 bar."
    ]

    # The member shares the conversation; the owner reads it and continues in a copy.
    member.wait_for_url(re.compile(r"/c/\d+/$"))
    member.reload()
    member.get_by_text("Share", exact=True).click()
    member.get_by_label("Share with team").select_option(label="Pump Crew")
    member.get_by_role("button", name="Save").last.click()
    expect(member.get_by_text("Shared with Pump Crew")).to_be_visible()

    owner.reload()
    shared = owner.get_by_role("list", name="Shared conversations")
    expect(shared).to_contain_text("by erin")
    shared.get_by_role("link").first.click()
    expect(owner.locator("article").last).to_contain_text("It opens at 42 bar.")
    owner.get_by_role("button", name="Continue in my own copy").click()
    owner.wait_for_url(re.compile(r"/c/\d+/$"))
    kimi.script = Script(tokens=["Yes", "."])
    send(owner, "Is that the same as last year?")
    answer_done(owner, "Yes.")
    history = [m["content"] for m in kimi.streams[-1].body["messages"] if m["role"] != "system"]
    assert history == [
        "@pump-crew When does the relief valve open?",
        "It opens at 42 bar.",
        "Is that the same as last year?",
    ]
    owner_context.close()
    member.context.close()
