"""The page works without JavaScript: every action is a plain form post answered by the server.

The scripts only make the same actions instant, so this is also the test of the server's own
form endpoints, field errors and one-shot messages.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.live import Live, data_rows, org_switch, row_names, sign_in
from tests.factories import ACCESS_TOKEN, PIXEL_ID

pytestmark = pytest.mark.browser


def test_without_javascript_save_toggle_search_and_test_event(plain_page: Page, live: Live) -> None:
    page = plain_page
    live.org("acme", "Acme Corp")
    live.org("globex", "Globex")
    sign_in(page, live)
    save = page.get_by_role("button", name="Save", exact=True)

    # A field error comes back from the server next to its field, with the values kept.
    page.get_by_role("textbox", name="Pixel ID").fill("abc")
    save.click()
    pixel_id = page.get_by_role("textbox", name="Pixel ID")
    error = "Pixel ID must be the pixel's numeric ID (digits only)."
    expect(pixel_id).to_have_attribute("aria-invalid", "true")
    expect(pixel_id).to_have_accessible_description(re.compile(re.escape(error)))
    expect(pixel_id).to_have_value("abc")

    pixel_id.fill(PIXEL_ID)
    page.get_by_role("textbox", name="Access Token").fill(ACCESS_TOKEN)
    page.get_by_role("textbox", name="Test Event Code").fill("TEST12345")
    page.get_by_role("switch", name="Enable pixel").check()
    save.click()
    expect(page.get_by_role("status").filter(has_text="Settings saved")).to_be_visible()
    stored = live.stored_pixel()
    assert (stored.pixel_id, stored.access_token, stored.enabled) == (PIXEL_ID, ACCESS_TOKEN, True)

    org_switch(page, "Acme Corp").click()
    expect(
        page.get_by_role("status").filter(has_text="Enabled retargeting for Acme Corp")
    ).to_be_visible()
    expect(org_switch(page, "Acme Corp")).to_be_checked()
    assert live.stored_org("acme").retargeting_enabled is True

    search = page.get_by_role("searchbox", name="Search organizations")
    search.fill("glob")
    search.press("Enter")
    expect(page).to_have_url(re.compile(r"[?&]search=glob"))
    expect(data_rows(page)).to_have_count(1)
    assert row_names(page) == ["Globex"]

    page.get_by_role("button", name="Send test event").click()
    answer = page.get_by_role("region", name="Test event").get_by_role("status")
    expect(answer).to_contain_text("Meta received 1 event.")
    assert live.graph.wait_for(1, 5.0)
