"""axe-core on every page people use, in light and dark, on a desktop and a phone: no serious
or critical violation. axe-core is vendored for these tests only (tests/e2e/vendor/, from the
npm registry); it is injected with the page's CSP bypassed, as the page itself never loads it."""

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import log_in
from tests.helpers.browser import RICH, send
from tests.helpers.kimi_stub import Script

AXE = Path(__file__).parent / "vendor" / "axe-4.14.1.min.js"
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


def violations(page: Page) -> list[dict]:
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        """async () => {
            const result = await axe.run(document, {resultTypes: ["violations"]});
            return result.violations.map(v => ({
                id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(" ")),
            }));
        }"""
    )
    return found


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_no_serious_or_critical_violation_on_any_page(browser, server, kimi, scheme, size):
    context = browser.new_context(
        base_url=server,
        locale="en-US",
        color_scheme=scheme,
        viewport=VIEWPORTS[size],
        bypass_csp=True,
    )
    page = context.new_page()
    figures: dict[str, dict[str, int]] = {}
    failures: dict[str, list] = {}

    def check(name: str) -> None:
        found = violations(page)
        figures[name] = {}
        for violation in found:
            impact = violation["impact"] or "minor"
            figures[name][impact] = figures[name].get(impact, 0) + len(violation["nodes"])
        bad = [v for v in found if v["impact"] in ("serious", "critical")]
        if bad:
            failures[name] = bad

    for path, name in (("/accounts/login/", "log-in"), ("/accounts/signup/", "sign-up")):
        page.goto(path)
        check(name)

    log_in(page, server)
    # The chat page with an answer streaming: Markdown, a code block and math.
    kimi.script = Script(tokens=RICH + [" more"] * 50, stall_after=len(RICH))
    send(page, "Show me everything")
    answer = page.locator('article[data-role="assistant"]').last
    expect(answer.locator(".body-preview .katex").first).to_be_visible()
    check("chat (streaming)")
    page.locator("#composer").get_by_role("button", name="Stop").click()
    expect(answer).to_have_attribute("data-state", "stopped")
    expect(answer.locator(".markdown .katex").first).to_be_visible()
    check("chat (answered)")

    page.goto("/files/")
    check("files")
    page.goto("/teams/")
    check("teams")
    page.get_by_label("Team name").fill(f"Axe {scheme} {size}")
    page.get_by_role("button", name="New team").click()
    expect(page.get_by_role("heading", name=f"Axe {scheme} {size}")).to_be_visible()
    check("team")
    page.get_by_role("link", name="Account").click()  # the Account page, with Preferences
    expect(page.get_by_role("heading", name="Preferences")).to_be_visible()
    check("account")
    page.goto("/accounts/preferences/")
    check("preferences")

    print(f"\naxe-core {scheme} {size}: {figures}")
    context.close()
    assert not failures, failures
