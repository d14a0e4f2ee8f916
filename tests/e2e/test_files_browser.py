"""Files in Chromium: attach from the composer, refer with `@`, get an answer about them."""

import re

from playwright.sync_api import Page, expect

from tests.helpers import documents
from tests.helpers.kimi_stub import Script

REPORT = "收入增长了百分之十二。Revenue grew by twelve percent."


def test_attach_refer_with_at_and_get_an_answer_about_the_file(page: Page, kimi, tmp_path):
    kimi.script = Script(tokens=["Revenue", " grew", " 12%."])
    report = tmp_path / "report-q3.docx"
    report.write_bytes(documents.docx_bytes())
    page.get_by_label("Attach files").set_input_files(str(report))

    attached = page.get_by_role("group", name="Attached files")
    expect(attached).to_contain_text("report-q3.docx")
    expect(attached.get_by_role("status")).to_contain_text("Ready")

    # "@" suggests the files the user may read; Enter picks one.
    box = page.get_by_role("textbox", name="Message")
    box.fill("What does ")
    box.press_sequentially("@repo")
    suggestions = page.get_by_role("listbox", name="File suggestions")
    option = suggestions.get_by_role("option")
    expect(option).to_contain_text(["report-q3.docx"])
    expect(option).to_have_attribute("aria-selected", "true")
    expect(box).to_have_attribute("aria-activedescendant", option.get_attribute("id"))
    box.press("Escape")
    expect(suggestions).to_be_hidden()
    box.press_sequentially("r")
    expect(option).to_contain_text(["report-q3.docx"])
    box.press("Enter")
    expect(box).to_have_value("What does @report-q3.docx ")
    box.press_sequentially("say about revenue?")
    box.press("Enter")

    answer = page.locator('article[data-role="assistant"]')
    expect(answer).to_have_attribute("data-state", "done")
    expect(answer).to_contain_text("Revenue grew 12%.")
    question = page.locator('article[data-role="user"]')
    expect(question.get_by_role("group", name="Files referred to")).to_contain_text(
        "report-q3.docx"
    )
    expect(page.locator("#attachments")).to_be_empty()  # they went with the message
    documents_sent = [
        m["content"] for m in kimi.streams[-1].body["messages"] if m["role"] == "system"
    ]
    assert any("report-q3.docx" in d and REPORT in d for d in documents_sent)

    page.get_by_role("link", name="Files").click()
    files = page.get_by_role("list", name="Files")
    expect(files).to_contain_text("report-q3.docx")
    expect(files.get_by_role("status").first).to_contain_text("Ready")
    page.once("dialog", lambda dialog: dialog.accept())
    files.get_by_role("button", name="Delete report-q3.docx").click()
    expect(files).not_to_contain_text("report-q3.docx")


def test_a_refused_file_says_why_and_the_message_stays(page: Page, kimi, tmp_path):
    tool = tmp_path / "invoice.pdf"
    tool.write_bytes(b"\x7fELF\x02\x01\x01" + b"\0" * 64)
    box = page.get_by_role("textbox", name="Message")
    box.fill("Please read this invoice")
    page.get_by_label("Attach files").set_input_files(str(tool))
    expect(page.get_by_role("alert").filter(has_text="invoice.pdf")).to_contain_text(
        "“invoice.pdf” was not uploaded: its content does not match its name"
    )
    expect(box).to_have_value("Please read this invoice")
    assert kimi.requests == []


DROP_AND_PASTE = """() => {
  function transfer(name, text) {
    const data = new DataTransfer();
    data.items.add(new File([text], name, {type: "text/plain"}));
    return data;
  }
  const main = document.querySelector("main");
  const dropped = transfer("dropped.txt", "Dropped on the chat.");
  main.dispatchEvent(new DragEvent("dragover", {bubbles: true, cancelable: true,
                                                dataTransfer: dropped}));
  main.dispatchEvent(new DragEvent("drop", {bubbles: true, cancelable: true,
                                            dataTransfer: dropped}));
  const box = document.querySelector("textarea[name=message]");
  const pasted = transfer("pasted.md", "# Pasted");
  box.dispatchEvent(new ClipboardEvent("paste", {bubbles: true, cancelable: true,
                                                 clipboardData: pasted}));
}"""


def test_files_dropped_on_the_chat_or_pasted_are_attached(page: Page, kimi):
    page.evaluate(DROP_AND_PASTE)
    attached = page.get_by_role("group", name="Attached files")
    expect(attached.get_by_role("status").filter(has_text="Ready")).to_have_count(2)
    expect(attached).to_contain_text("dropped.txt")
    expect(attached).to_contain_text("pasted.md")

    # A file taken off again does not go with the message.
    attached.get_by_role("button", name="Remove pasted.md").click()
    box = page.get_by_role("textbox", name="Message")
    box.fill("What was dropped?")
    box.press("Enter")
    expect(page.locator('article[data-role="assistant"]')).to_have_attribute("data-state", "done")
    documents_sent = [
        m["content"] for m in kimi.streams[-1].body["messages"] if m["role"] == "system"
    ]
    assert any("Dropped on the chat." in d for d in documents_sent)
    assert not any("# Pasted" in d for d in documents_sent)


def test_a_file_uploaded_again_on_the_files_page_is_listed_once(page: Page, kimi, tmp_path):
    again = tmp_path / "uploaded-twice.txt"
    again.write_text("The same bytes, twice.")
    page.goto("/files/")
    files = page.get_by_role("list", name="Files")
    for _ in range(2):
        page.get_by_label("Upload files").set_input_files(str(again))
        with page.expect_response(re.compile(r"/files/upload/$")):
            page.get_by_role("button", name="Upload", exact=True).click()
        expect(page.locator("#upload-status")).to_contain_text("Uploaded: uploaded-twice.txt")
    expect(files.locator("li", has_text="uploaded-twice.txt")).to_have_count(1)
    page.reload()
    expect(files.locator("li", has_text="uploaded-twice.txt")).to_have_count(1)


def test_at_suggests_names_that_start_with_the_word_first(page: Page, kimi, tmp_path):
    names = ["kimi27.txt", "readme kimi27.txt"]  # the second is the newer
    for name in names:
        (tmp_path / name).write_text(f"The text of {name}.")
    page.goto("/files/")
    page.get_by_label("Upload files").set_input_files([str(tmp_path / n) for n in names])
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("#upload-status")).to_contain_text("Uploaded:")
    page.goto("/")
    page.get_by_role("textbox", name="Message").press_sequentially("@kimi2")
    options = page.get_by_role("listbox", name="File suggestions").get_by_role("option")
    expect(options).to_have_count(2)
    expect(options.first).to_contain_text("kimi27.txt")
    expect(options.last).to_contain_text("readme kimi27.txt")


def test_file_chips_are_shown_in_the_order_the_files_were_attached(page: Page, kimi, tmp_path):
    attached = page.get_by_role("group", name="Attached files")
    names = ["chip-a.txt", "chip-b.txt", "chip-c.txt"]
    for n, name in enumerate(names, start=1):
        (tmp_path / name).write_text(f"The text of {name}.")
        page.get_by_label("Attach files").set_input_files(str(tmp_path / name))
        expect(attached.get_by_role("status")).to_have_count(n)
        expect(attached.get_by_role("status").last).to_contain_text("Ready")
    expect(attached.locator(".file-name")).to_have_text(names)
    page.get_by_role("textbox", name="Message").fill("Three files")
    page.get_by_role("textbox", name="Message").press("Enter")
    chips = page.locator('article[data-role="user"] .file-name')
    expect(chips).to_have_text(names)
    page.reload()
    expect(chips).to_have_text(names)


def test_a_deleted_files_chip_stays_on_old_messages_struck_through(page: Page, kimi, tmp_path):
    doomed = tmp_path / "soon-deleted.txt"
    doomed.write_text("Read me, then delete me.")
    page.get_by_label("Attach files").set_input_files(str(doomed))
    expect(page.get_by_role("group", name="Attached files").get_by_role("status")).to_contain_text(
        "Ready"
    )
    page.get_by_role("textbox", name="Message").fill("About this file")
    page.get_by_role("textbox", name="Message").press("Enter")
    expect(page.locator('article[data-role="assistant"]')).to_have_attribute("data-state", "done")
    chat_url = page.url

    page.goto("/files/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete soon-deleted.txt").click()
    expect(page.get_by_role("list", name="Files")).not_to_contain_text("soon-deleted.txt")

    page.goto(chat_url)
    files = page.locator('article[data-role="user"]').get_by_role("group", name="Files referred to")
    expect(files.get_by_role("deletion")).to_have_text("soon-deleted.txt")
    expect(files).to_contain_text("deleted")
    expect(files.get_by_role("link")).to_have_count(0)  # nothing to download any more
