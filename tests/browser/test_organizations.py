"""The organizations table: toggles, search, filter, pagination, sorting (steps 7-10, rows 6-13)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.live import (
    HeldWrites,
    Live,
    data_rows,
    org_switch,
    org_table,
    row_names,
    sign_in,
    summary_card,
)

pytestmark = pytest.mark.browser

TOGGLE_URL = "**/api/v1/platform/retargeting/organizations/*"


def seed_four(live: Live) -> None:
    live.org("acme", "Acme Corp", enabled=True, pageviews=120, calls=8)
    live.org("acme-labs", "Acme Labs", pageviews=40, calls=2)
    live.org("globex", "Globex", enabled=True, pageviews=300, calls=21)
    live.org("initech", "Initech", pageviews=5)


def test_ux_step7_toggle_shows_saving_then_on_and_survives_reload(page: Page, live: Live) -> None:
    live.pixel()
    live.org("acme", "Acme Corp")
    sign_in(page, live)
    switch = org_switch(page, "Acme Corp")
    expect(switch).not_to_be_checked()

    held = HeldWrites(page, TOGGLE_URL)  # so the "saving" state can be seen
    switch.click()
    expect(switch).to_have_attribute("aria-busy", "true")
    expect(switch).to_be_checked()  # flipped at once, while it saves
    held.release()
    expect(switch).not_to_have_attribute("aria-busy", "true")
    expect(switch).to_have_attribute("aria-checked", "true")
    assert live.stored_org("acme").retargeting_enabled is True
    # The rest of the page follows without a reload: the count and the change log.
    expect(summary_card(page, "Organizations enabled")).to_contain_text(re.compile(r"1\s+of\s+1"))
    recent = page.get_by_role("region", name="Recent changes")
    expect(recent).to_contain_text("Enabled retargeting for Acme Corp")

    page.reload()
    expect(org_switch(page, "Acme Corp")).to_be_checked()
    expect(org_switch(page, "Acme Corp")).to_have_attribute("aria-checked", "true")


def test_ux_step8_and_edge_row7_search_filters_as_you_type_without_reload(
    page: Page, live: Live
) -> None:
    live.pixel()
    seed_four(live)
    sign_in(page, live)
    expect(data_rows(page)).to_have_count(4)
    page.evaluate("window.__noReload = 'still here'")
    search = page.get_by_role("searchbox", name="Search organizations")

    search.press_sequentially("acme", delay=30)  # no Enter: the filter follows the typing
    expect(data_rows(page)).to_have_count(2)
    assert sorted(row_names(page)) == ["Acme Corp", "Acme Labs"]

    search.press_sequentially(" l", delay=30)
    expect(data_rows(page)).to_have_count(1)
    assert row_names(page) == ["Acme Labs"]

    search.fill("zzz-nothing")
    expect(org_table(page).get_by_text("No organizations found")).to_be_visible()
    expect(data_rows(page)).to_have_count(0)

    search.fill("")
    expect(data_rows(page)).to_have_count(4)
    expect(org_table(page).get_by_text("No organizations found")).to_be_hidden()
    assert page.evaluate("window.__noReload") == "still here"


def test_ux_step9_show_only_enabled(page: Page, live: Live) -> None:
    live.pixel()
    seed_four(live)
    sign_in(page, live)
    page.evaluate("window.__noReload = 'still here'")
    only_enabled = page.get_by_role("checkbox", name="Show only enabled")
    only_enabled.check()
    expect(data_rows(page)).to_have_count(2)
    assert sorted(row_names(page)) == ["Acme Corp", "Globex"]
    for switch in org_table(page).get_by_role("switch").all():
        expect(switch).to_be_checked()
    only_enabled.uncheck()
    expect(data_rows(page)).to_have_count(4)
    assert page.evaluate("window.__noReload") == "still here"


def test_ux_step10_and_edge_row6_switches_disabled_and_explained_without_pixel(
    page: Page, live: Live
) -> None:
    seed_four(live)  # no pixel at all
    sign_in(page, live)
    why = re.compile(r"activate the pixel first", re.I)
    for name in ("Acme Labs", "Initech"):
        switch = org_switch(page, name)
        expect(switch).to_be_disabled()
        expect(switch).to_have_accessible_description(why)  # read by screen readers
        expect(switch).to_have_attribute("title", why)  # the tooltip
    org_switch(page, "Initech").click(force=True)  # a click on a disabled switch does nothing
    expect(org_switch(page, "Initech")).not_to_be_checked()
    assert live.stored_org("initech").retargeting_enabled is False
    expect(org_switch(page, "Acme Corp")).to_be_enabled()  # switching off is always allowed

    warning = page.locator("[data-warning-box]")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("The pixel is not configured")
    colour = warning.evaluate("el => getComputedStyle(el).backgroundColor")
    red, green, blue = (int(c) for c in re.findall(r"\d+", colour)[:3])
    assert red >= green > blue, f"the warning box is not amber: {colour}"


def test_edge_row13_failed_toggle_reverts_and_says_so(page: Page, live: Live) -> None:
    live.pixel()
    live.org("acme", "Acme Corp")
    sign_in(page, live)
    page.route(
        TOGGLE_URL,
        lambda route: route.abort() if route.request.method != "GET" else route.continue_(),
    )
    switch = org_switch(page, "Acme Corp")
    switch.click()
    alert = page.get_by_role("alert").filter(has_text="Could not update Acme Corp")
    expect(alert).to_be_visible()
    expect(switch).not_to_be_checked()  # reverted, not left showing a state that was not saved
    expect(switch).to_have_attribute("aria-checked", "false")
    assert live.stored_org("acme").retargeting_enabled is False


def test_edge_row13_toggle_refused_by_server_reverts_and_says_so(page: Page, live: Live) -> None:
    live.pixel()
    live.org("acme", "Acme Corp")
    sign_in(page, live)
    page.route(
        TOGGLE_URL,
        lambda route: (
            route.fulfill(status=500, json={"detail": "boom"})
            if route.request.method != "GET"
            else route.continue_()
        ),
    )
    switch = org_switch(page, "Acme Corp")
    switch.click()
    expect(page.get_by_role("alert").filter(has_text="Could not update Acme Corp")).to_be_visible()
    expect(switch).not_to_be_checked()


def pageview_column(page: Page) -> list[int]:
    headers = [h.inner_text().strip() for h in org_table(page).get_by_role("columnheader").all()]
    index = next(i for i, text in enumerate(headers) if text.startswith("Pageviews"))
    values = []
    for row in data_rows(page).all():
        cells = row.get_by_role("cell").or_(row.get_by_role("rowheader")).all()
        values.append(int(re.sub(r"\D", "", cells[index].inner_text())))
    return values


def test_pagination_next_previous_and_sort_by_pageviews(page: Page, live: Live) -> None:
    live.pixel()
    for i in range(1, 61):
        live.org(f"org-{i:02d}", f"Org {i:02d}", pageviews=((i * 37) % 61) * 10, calls=i % 7)
    sign_in(page, live)

    first = row_names(page)
    assert 0 < len(first) < 60
    assert first == sorted(first)
    assert first[0] == "Org 01"
    page.get_by_role("link", name="Next page").click()
    expect(org_switch(page, first[0])).to_have_count(0)
    second = row_names(page)
    assert second
    assert second[0] == f"Org {len(first) + 1:02d}"
    assert not set(first) & set(second)
    page.get_by_role("link", name="Previous page").click()
    expect(org_switch(page, first[0])).to_be_visible()

    header = org_table(page).get_by_role("columnheader", name=re.compile(r"^Pageviews"))
    header.get_by_role("button").or_(header.get_by_role("link")).click()
    expect(header).to_have_attribute("aria-sort", re.compile(r"^(ascending|descending)$"))
    order = header.get_attribute("aria-sort")
    values = pageview_column(page)
    expected = sorted(values, reverse=order == "descending")
    assert values == expected
    assert values[0] == (10 if order == "ascending" else 600)  # the whole set, not one page

    header.get_by_role("button").or_(header.get_by_role("link")).click()
    flipped = "descending" if order == "ascending" else "ascending"
    expect(header).to_have_attribute("aria-sort", flipped)
    values = pageview_column(page)
    assert values == sorted(values, reverse=flipped == "descending")
