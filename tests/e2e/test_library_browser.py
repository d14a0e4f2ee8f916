"""Kimi searching a team library itself (search_library) in Chromium: a question about the
library makes Kimi search it in its own words; the search shows live while the round runs,
is still there after a reload, and what it found is listed under the finished answer."""

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import _daphne, _prepare, log_in
from tests.helpers.browser import send
from tests.helpers.kimi_stub import Script


@pytest.fixture(scope="module")
def small_window_server(tmp_path_factory, kimi_stub):
    """A server whose kimi-k3 has a small window: a library of a few hundred paragraphs is
    too long to send whole, so questions get passages (and Kimi its search)."""
    tmp = tmp_path_factory.mktemp("e2e-library")
    env = _prepare(tmp, kimi_stub, KIMI_CONTEXT_WINDOWS="kimi-k3=8192")
    with _daphne(env, tmp / "daphne.log") as url:
        yield url


def upload(page: Page, path) -> None:
    page.get_by_label("Upload to team").set_input_files(str(path))
    page.get_by_role("button", name="Upload", exact=True).click()
    row = page.get_by_role("list", name="Team files").get_by_role("listitem")
    expect(row.filter(has_text=path.name).get_by_role("status")).to_contain_text("Ready")


def test_kimi_searches_the_team_library_live_and_cites_what_it_found(
    browser, small_window_server, kimi, tmp_path
):
    page = browser.new_context(base_url=small_window_server, locale="en-US").new_page()
    log_in(page, small_window_server)
    page.get_by_role("link", name="Teams").click()
    page.get_by_label("Team name").fill("Valve Crew")
    page.get_by_role("button", name="New team").click()
    expect(page.get_by_role("heading", name="Valve Crew")).to_be_visible()
    manual, valves = tmp_path / "manual.txt", tmp_path / "valves.txt"
    manual.write_text(
        "\n\n".join(
            f"Section {n}. Inspect the seals, the filters and the bearings of unit {n}; "
            "record the readings in the logbook before the next run. " * 4
            for n in range(300)
        )
    )
    valves.write_text("Valve notes. The Zephyr relief valve opens at 42 bar.")
    upload(page, manual)
    upload(page, valves)

    page.goto("/")
    kimi.script = Script(
        function_calls=[("search_library", '{"query": "Zephyr relief valve"}')],
        function_rounds=2,  # it searches twice: the step is up for two rounds
        reasoning=[f"thought {i}. " for i in range(40)],
        tokens=["It opens", " at 42 bar."],
        delay=0.05,
    )
    send(page, "@valve-crew How often are the seals inspected?")
    answer = page.locator('article[data-role="assistant"]').last
    expect(answer).to_contain_text("Searching the library: Zephyr relief valve")
    expect(answer).to_have_attribute("data-state", "streaming")
    page.reload()  # mid-round: the step is still there, and the rest comes
    answer = page.locator('article[data-role="assistant"]').last
    expect(answer).to_contain_text("Searching the library: Zephyr relief valve")
    expect(answer).to_have_attribute("data-state", "done", timeout=30_000)
    expect(answer.locator(".body")).to_have_text("It opens at 42 bar.")
    expect(answer).to_contain_text("Searched the library: Zephyr relief valve")
    # The question's passages came from the manual; Kimi's search found the note.
    sources = answer.get_by_role("group", name="Sources")
    expect(sources.get_by_role("link", name="manual.txt")).to_be_visible()
    expect(sources.get_by_role("link", name="valves.txt")).to_have_attribute(
        "href", re.compile(r"^/files/\d+/view/$")
    )
    tools = [m for m in kimi.streams[-1].body["messages"] if m["role"] == "tool"]
    assert tools and tools[0]["content"].startswith("[1] “valves.txt”:\nValve notes.")
    page.context.close()
