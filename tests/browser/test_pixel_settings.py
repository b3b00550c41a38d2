"""The summary cards, the pixel form and the test-event button (UX audit steps 2-6, edge row 8)."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, Route, expect

from tests.browser.live import (
    EVENT_NAMES,
    PAGE_PATH,
    TOKEN_LAST4,
    HeldWrites,
    Live,
    sign_in,
    summary_card,
)
from tests.factories import ACCESS_TOKEN, PIXEL_ID
from tests.fakes.graph_faults import Fault

pytestmark = pytest.mark.browser

PIXEL_API = "**/api/v1/platform/retargeting/pixel"
TOAST_SECONDS = 3.0  # the spec: the success toast dismisses itself after 3 s
TOAST_SLACK = 0.8  # its fade-out, and polling on a busy machine


def test_ux_step2_summary_cards_show_status_enabled_count_and_event_names(
    page: Page, live: Live
) -> None:
    live.pixel()
    live.org("acme", "Acme Corp", enabled=True)
    live.org("globex", "Globex")
    live.org("initech", "Initech")
    sign_in(page, live)
    expect(summary_card(page, "Pixel Status")).to_contain_text(re.compile(r"active", re.I))
    expect(summary_card(page, "Organizations enabled")).to_contain_text(re.compile(r"1\s+of\s+3"))
    events = summary_card(page, "Event types")
    for name in EVENT_NAMES:
        expect(events.get_by_text(name, exact=True)).to_be_visible()


def test_ux_steps3_to_6_and_edge_row8_enter_settings_toggle_save_and_reload(
    page: Page, live: Live
) -> None:
    sign_in(page, live)
    save = page.get_by_role("button", name="Save", exact=True)
    pixel_id = page.get_by_role("textbox", name="Pixel ID")
    token = page.get_by_role("textbox", name="Access Token")
    enable = page.get_by_role("switch", name="Enable pixel")

    # Edge row 8: nothing changed, nothing to save; a change undone is no change either.
    expect(save).to_be_disabled()
    pixel_id.press_sequentially("12")
    expect(save).to_be_enabled()  # step 3
    pixel_id.fill("")
    expect(save).to_be_disabled()

    pixel_id.press_sequentially(PIXEL_ID)
    expect(save).to_be_enabled()
    expect(token).to_have_attribute("type", "password")  # step 4
    token.fill(ACCESS_TOKEN)
    page.get_by_role("textbox", name="Test Event Code").fill("TEST12345")
    expect(enable).not_to_be_checked()
    enable.click()  # step 5
    expect(enable).to_be_checked()  # the accessible state (a native checkbox: no aria-checked)

    held = HeldWrites(page, PIXEL_API)
    save.click()  # step 6: a spinner while it saves
    saving = page.get_by_role("button", name="Saving…")
    expect(saving).to_have_attribute("aria-busy", "true")
    expect(saving).to_be_disabled()  # no double submit
    held.release()
    toast = page.get_by_role("status").filter(has_text="Settings saved")
    expect(toast).to_be_visible()
    shown_at = time.monotonic()
    page.wait_for_timeout(1_000)
    expect(toast).to_be_visible()  # not a flash: it stays long enough to be read
    expect(toast).to_be_hidden(timeout=(TOAST_SECONDS + 2) * 1000)
    shown_for = time.monotonic() - shown_at
    assert TOAST_SECONDS - 0.5 < shown_for < TOAST_SECONDS + TOAST_SLACK, shown_for

    stored = live.stored_pixel()
    assert (stored.pixel_id, stored.access_token, stored.enabled) == (PIXEL_ID, ACCESS_TOKEN, True)
    assert stored.test_event_code == "TEST12345"

    page.reload()
    expect(pixel_id).to_have_value(PIXEL_ID)
    expect(enable).to_be_checked()
    expect(page.get_by_role("textbox", name="Test Event Code")).to_have_value("TEST12345")
    expect(token).to_have_value("")  # the token never comes back to the browser...
    html = page.content()
    assert f"…{TOKEN_LAST4}" in html  # ...only its last four characters
    assert ACCESS_TOKEN not in html
    expect(save).to_be_disabled()


def test_invalid_pixel_id_shows_an_error_next_to_the_field(page: Page, live: Live) -> None:
    live.pixel(enabled=False)
    sign_in(page, live)
    pixel_id = page.get_by_role("textbox", name="Pixel ID")
    pixel_id.fill("abc")
    page.get_by_role("button", name="Save", exact=True).click()
    error = "Pixel ID must be the pixel's numeric ID (digits only)."
    expect(pixel_id).to_have_attribute("aria-invalid", "true")
    expect(pixel_id).to_have_accessible_description(re.compile(re.escape(error)))
    field_error = page.locator("[data-pixel-form]").get_by_text(error, exact=True)
    expect(field_error).to_be_visible()
    # "Next to the field": just below the input, in its column.
    box, note = pixel_id.bounding_box(), field_error.bounding_box()
    assert box is not None
    assert note is not None
    assert 0 <= note["y"] - (box["y"] + box["height"]) < 80
    assert abs(note["x"] - box["x"]) < 40
    expect(page.get_by_role("alert").filter(has_text="Failed to save settings")).to_be_visible()
    assert live.stored_pixel().pixel_id == PIXEL_ID


def test_error_state_save_failure_shows_failed_to_save_alert(page: Page, live: Live) -> None:
    live.pixel(enabled=False)
    sign_in(page, live)

    def fail_writes(route: Route) -> None:
        if route.request.method == "GET":
            route.continue_()
        else:
            route.fulfill(status=500, body="boom")

    page.route(re.compile(r".*/pixel(\?.*)?$"), fail_writes)
    page.get_by_role("switch", name="Enable pixel").click()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("alert").filter(has_text="Failed to save settings")).to_be_visible()
    assert live.stored_pixel().enabled is False


def test_test_event_button_shows_events_received_and_fbtrace_id(page: Page, live: Live) -> None:
    live.pixel(test_event_code="TEST12345")
    sign_in(page, live)
    page.get_by_role("button", name="Send test event").click()
    answer = page.get_by_role("region", name="Test event").get_by_role("status")
    expect(answer).to_contain_text("Meta received 1 event.")
    expect(answer.get_by_text(re.compile(r"^fbtrace_id: \S+"))).to_be_visible()
    assert live.graph.wait_for(1, 5.0)
    assert live.graph.received[0].test_event_code == "TEST12345"


def test_test_event_button_shows_metas_message_when_meta_refuses(page: Page, live: Live) -> None:
    live.pixel(test_event_code="TEST12345")
    live.graph.enqueue_faults(Fault.error(190, message="Invalid OAuth access token"))
    sign_in(page, live)
    page.get_by_role("button", name="Send test event").click()
    answer = page.get_by_role("region", name="Test event").get_by_role("alert")
    expect(answer).to_contain_text("Invalid OAuth access token")
    expect(answer).to_contain_text("Code 190")
    assert PAGE_PATH in page.url  # answered in place, no navigation away
