"""Keyboard-only use and an axe-core scan (spec section 5, "Accessibility")."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from playwright.sync_api import Page, expect

from tests.browser.live import LOGIN_PATH, Live, org_switch, sign_in

pytestmark = pytest.mark.browser

MAX_TABS = 80  # the page's tab stops before the last organization row, with room to spare
BLOCKING_IMPACTS = {"serious", "critical"}

FOCUS_RING_JS = """el => {
    const style = getComputedStyle(el);
    const outline = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0;
    const shadow = style.boxShadow && style.boxShadow !== 'none';
    return {visible: el.matches(':focus-visible'), ring: outline || shadow,
            outline: `${style.outlineStyle} ${style.outlineWidth} ${style.outlineColor}`,
            shadow: style.boxShadow};
}"""


def test_keyboard_only_tab_to_an_org_switch_and_space_toggles_it_with_visible_focus(
    page: Page, live: Live
) -> None:
    live.pixel()
    live.org("acme", "Acme Corp")
    live.org("globex", "Globex")
    sign_in(page, live)
    switch = org_switch(page, "Globex")
    page.locator("body").click(position={"x": 1, "y": 1})  # start from the top of the page
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        if switch.evaluate("el => el === document.activeElement"):
            break
    else:
        pytest.fail(f"{MAX_TABS} presses of Tab never reached the Globex switch")
    focus = switch.evaluate(FOCUS_RING_JS)
    assert focus["visible"], focus
    assert focus["ring"], f"no visible focus indicator: {focus}"

    for expected in (True, False, True):
        page.keyboard.press("Space")
        expect(switch).to_have_attribute("aria-checked", str(expected).lower())
        expect(switch).not_to_have_attribute("aria-busy", "true")  # saved, not just flipped
        expect(switch).to_be_focused()  # focus stays where the admin is
        assert live.stored_org("globex").retargeting_enabled is expected


def blocking_violations(page: Page) -> list[str]:
    results = Axe().run(page)
    lines = []
    blocking = []
    for violation in results.response["violations"]:
        targets = [node["target"] for node in violation["nodes"]]
        line = f"{violation['impact']}: {violation['id']}: {violation['help']} at {targets}"
        lines.append(line)
        if violation["impact"] in BLOCKING_IMPACTS:
            blocking.append(line)
    if lines:
        print(f"\naxe on {page.url}:\n  " + "\n  ".join(lines))
    return blocking


def test_axe_admin_page_with_data_has_no_serious_or_critical_violations(
    page: Page, live: Live
) -> None:
    live.pixel(test_event_code="TEST12345")
    live.org("acme", "Acme Corp", enabled=True, pageviews=1200, calls=30)
    live.org("globex", "Globex", pageviews=45, calls=1)
    live.org("paused-co", "Paused Co", status="suspended")
    sign_in(page, live)
    assert blocking_violations(page) == []


def test_axe_admin_page_without_pixel_has_no_serious_or_critical_violations(
    page: Page, live: Live
) -> None:
    live.org("acme", "Acme Corp")
    sign_in(page, live)
    assert blocking_violations(page) == []


def test_axe_login_page_has_no_serious_or_critical_violations(page: Page, live: Live) -> None:
    page.goto(LOGIN_PATH)
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert blocking_violations(page) == []
