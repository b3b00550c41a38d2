"""A full-page screenshot of the admin page with realistic data, for docs/screenshot.png.

`make screenshot` runs this with SCREENSHOT_PATH=docs/screenshot.png; the plain test run
writes it to the test's temporary directory, so a test run never dirties the work tree.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.live import Live, sign_in

pytestmark = pytest.mark.browser

# (name, pageviews, calls, B2B)
ORGANIZATIONS = [
    ("Northwind Traders", 18_420, 312, True),
    ("Contoso Dental", 9_877, 141, True),
    ("Fabrikam Legal", 7_301, 96, True),
    ("Adventure Works", 6_950, 88, False),
    ("Tailspin Toys", 5_412, 40, False),
    ("Wide World Importers", 4_980, 77, True),
    ("Blue Yonder Airlines", 4_433, 12, False),
    ("Proseware Accounting", 3_905, 61, True),
    ("Litware Software", 3_120, 35, False),
    ("Coho Winery", 2_876, 19, False),
    ("Alpine Ski House", 2_404, 9, False),
    ("Margie's Travel", 2_150, 27, False),
    ("Woodgrove Bank", 1_998, 44, True),
    ("Lucerne Publishing", 1_732, 8, False),
    ("Trey Research", 1_560, 22, True),
    ("Graphic Design Institute", 1_204, 5, False),
    ("Humongous Insurance", 1_099, 31, False),
    ("City Power & Light", 987, 14, False),
    ("Consolidated Messenger", 854, 3, False),
    ("Fourth Coffee", 771, 6, False),
    ("Relecloud", 640, 11, False),
    ("School of Fine Art", 512, 2, False),
    ("The Phone Company", 433, 7, False),
    ("VanArsdel Ltd", 380, 4, False),
    ("Wingtip Toys", 266, 1, False),
    ("Best For You Organics", 190, 0, False),
    ("Datum Corporation", 144, 2, False),
    ("Southridge Video", 87, 0, False),
    ("Bellows College", 35, 0, False),
    ("Munson's Pickles", 0, 0, False),
]


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


def seed_realistic(live: Live) -> None:
    live.pixel(test_event_code="TEST40123")
    for name, pageviews, calls, _b2b in ORGANIZATIONS:
        live.org(slug(name), name, pageviews=pageviews, calls=calls)
    live.org("greenleaf-florists", "Greenleaf Florists", status="suspended", pageviews=12)
    for name, *_counts, b2b in ORGANIZATIONS:
        if b2b:
            live.toggle(slug(name), True)
    # Some delivery history: views and calls delivered, and one call Meta refuses for good.
    live.graph.reject_events_where(
        lambda event: event.get("custom_data", {}).get("call_id") == "call-1044",
        "Invalid parameter: user_data.client_user_agent is required",
    )
    key = live.api_key()
    for i, (name, *_rest) in enumerate(ORGANIZATIONS[:8]):
        live.widget_view(key, slug(name), visitor=f"visitor-{i}")
    live.ingest(key, "call-started", slug("Northwind Traders"), call_id="call-1043")
    live.ingest(key, "call-started", slug("Adventure Works"), call_id="call-1044")
    live.wait_until_delivered()


def test_screenshot_of_the_admin_page_with_realistic_data(
    page: Page, live: Live, tmp_path: Path
) -> None:
    seed_realistic(live)
    sign_in(page, live)
    expect(page.get_by_role("heading", name="Delivery health")).to_be_visible()
    expect(page.get_by_role("heading", name="Recent changes")).to_be_visible()
    page.evaluate("document.fonts.ready")
    target = Path(os.environ.get("SCREENSHOT_PATH") or tmp_path / "screenshot.png")
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=target, full_page=True, animations="disabled")
    assert target.stat().st_size > 10_000
    print(f"\nscreenshot written to {target}")
