"""Delivery health: a token Meta refuses pauses delivery, and the page says so in Meta's words."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect

from tests.browser.live import Live, sign_in
from tests.fakes.graph_faults import Fault

pytestmark = pytest.mark.browser

META_MESSAGE = "Invalid OAuth access token"


def test_token_refused_by_meta_shows_red_paused_banner_with_metas_message(
    page: Page, live: Live
) -> None:
    live.pixel()
    live.org("acme", "Acme Corp", enabled=True)
    live.graph.enqueue_faults(Fault.error(190, message=META_MESSAGE))
    live.widget_view(live.api_key(), "acme")
    deadline = time.monotonic() + 15
    while live.stored_pause() is None:
        assert time.monotonic() < deadline, "delivery was never paused"
        time.sleep(0.1)

    sign_in(page, live)
    expect(page.get_by_role("heading", name="Delivery health")).to_be_visible()
    banner = page.get_by_role("alert").filter(has_text=META_MESSAGE)
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("paused", ignore_case=True)
    for prop in ("backgroundColor", "borderLeftColor"):
        colour = banner.evaluate(f"el => getComputedStyle(el).{prop}")
        red, green, blue = (int(c) for c in re.findall(r"\d+", colour)[:3])
        assert red > max(green, blue), f"the banner's {prop} is not red: {colour}"
