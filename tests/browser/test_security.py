"""What a hostile organization name or a forged request can do from a signed-in browser: nothing."""

from __future__ import annotations

import pytest
from playwright.sync_api import Dialog, Page, expect

from tests.browser.live import PAGE_PATH, Live, data_rows, org_switch, sign_in
from tests.factories import PIXEL_ID

pytestmark = pytest.mark.browser

SCRIPT_NAME = "<script>alert(1)</script>"
IMG_NAME = '"><img src=x onerror=alert(2)>'
PIXEL_FORM = f"{PAGE_PATH}/pixel"
TOGGLE_API = "/api/v1/platform/retargeting/organizations/acme"


def test_org_named_like_markup_is_shown_as_text_and_never_runs(page: Page, live: Live) -> None:
    live.pixel()
    live.org("xss-script", SCRIPT_NAME)
    live.org("xss-img", IMG_NAME)
    dialogs: list[str] = []

    def record(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    sign_in(page, live)
    for name in (SCRIPT_NAME, IMG_NAME):
        row = data_rows(page).filter(has=org_switch(page, name))
        expect(row).to_have_count(1)
        expect(row.get_by_text(name, exact=True)).to_be_visible()

    # The same names re-rendered by the page's own script (search, toggle) stay text too.
    page.get_by_role("searchbox", name="Search organizations").press_sequentially("script")
    expect(data_rows(page)).to_have_count(1)
    expect(data_rows(page).get_by_text(SCRIPT_NAME, exact=True)).to_be_visible()
    org_switch(page, SCRIPT_NAME).click()
    expect(org_switch(page, SCRIPT_NAME)).to_be_checked()
    page.wait_for_timeout(300)  # give an injected handler the chance it must not get
    assert dialogs == []


def csrf_token(page: Page) -> str:
    """The token the page itself sends, from its form field or its meta tag."""
    field = page.locator("input[name=csrf_token]")
    if field.count():
        return field.first.input_value()
    meta = page.locator("meta[name=csrf-token]")
    return meta.first.get_attribute("content") or ""


def test_csrf_requests_without_the_token_are_refused_and_change_nothing(
    page: Page, live: Live
) -> None:
    live.pixel()
    live.org("acme", "Acme Corp")
    sign_in(page, live)
    token = csrf_token(page)
    assert token, "the page carries no CSRF token"

    form: dict[str, str | float | bool] = {
        "pixel_id": "999999",
        "access_token": "",
        "test_event_code": "",
        "enabled": "off",
    }
    answer = page.request.post(PIXEL_FORM, form=form, max_redirects=0)
    assert answer.status == 403, answer.text()
    answer = page.request.post(PIXEL_FORM, form={**form, "csrf_token": "forged"}, max_redirects=0)
    assert answer.status == 403, answer.text()

    body = {"retargeting_enabled": True}
    answer = page.request.put(TOGGLE_API, data=body, max_redirects=0)
    assert answer.status == 403, answer.text()
    answer = page.request.put(
        TOGGLE_API, data=body, headers={"X-CSRF-Token": "forged"}, max_redirects=0
    )
    assert answer.status == 403, answer.text()

    pixel = live.stored_pixel()
    assert (pixel.pixel_id, pixel.enabled) == (PIXEL_ID, True)
    assert live.stored_org("acme").retargeting_enabled is False

    # The control: the same session with the page's token is let through.
    answer = page.request.put(TOGGLE_API, data=body, headers={"X-CSRF-Token": token})
    assert answer.status == 200, answer.text()
    assert live.stored_org("acme").retargeting_enabled is True
