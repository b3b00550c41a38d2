"""Signing in and out of the admin page (spec section 5, UX audit step 1)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.live import LOGIN_PATH, PAGE_PATH, Live, sign_in
from tests.factories import PIXEL_ID

pytestmark = pytest.mark.browser

ON_LOGIN = re.compile(re.escape(LOGIN_PATH) + r"(\?.*)?$")
ON_PAGE = re.compile(re.escape(PAGE_PATH) + r"/?$")


def test_ux_step1_signed_out_visit_redirects_to_login_then_page_loads_with_settings(
    page: Page, live: Live
) -> None:
    live.pixel(test_event_code="TEST12345")
    page.goto(PAGE_PATH)
    expect(page).to_have_url(ON_LOGIN)
    expect(page.get_by_role("heading", name="Retargeting", exact=True)).to_have_count(0)

    page.get_by_role("textbox", name="Email").fill(live.email)
    page.get_by_role("textbox", name="Password").fill(live.password)
    page.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(ON_PAGE)  # back where the admin was going
    expect(page.get_by_role("heading", name="Retargeting", exact=True)).to_be_visible()
    expect(page.get_by_role("textbox", name="Pixel ID")).to_have_value(PIXEL_ID)
    expect(page.get_by_role("textbox", name="Test Event Code")).to_have_value("TEST12345")
    expect(page.get_by_role("switch", name="Enable pixel")).to_be_checked()


def test_wrong_password_stays_on_login_and_grants_nothing(page: Page, live: Live) -> None:
    page.goto(LOGIN_PATH)
    page.get_by_role("textbox", name="Email").fill(live.email)
    page.get_by_role("textbox", name="Password").fill("not the password at all")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(ON_LOGIN)
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.get_by_text(re.compile(r"incorrect|invalid|wrong", re.I))).to_be_visible()
    page.goto(PAGE_PATH)
    expect(page).to_have_url(ON_LOGIN)


def test_sign_out_ends_the_session(page: Page, live: Live) -> None:
    sign_in(page, live)
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(ON_LOGIN)
    page.goto(PAGE_PATH)
    expect(page).to_have_url(ON_LOGIN)


def test_first_run_setup_link_creates_the_first_superadmin_once(
    first_run_page: Page, first_run_live: Live
) -> None:
    page = first_run_page
    found = re.search(r"/setup/[A-Za-z0-9_-]+", first_run_live.server.log())
    assert found, "the server printed no setup link"
    link = found.group(0)
    page.goto(link)
    expect(page.get_by_role("heading", name="Create the first superadmin")).to_be_visible()
    page.get_by_role("textbox", name="Email").fill("first@example.com")
    page.get_by_role("textbox", name="Password", exact=True).fill("a long first password")
    page.get_by_role("textbox", name="Confirm password").fill("a long first password")
    page.get_by_role("button", name="Create superadmin").click()
    expect(page).to_have_url(ON_PAGE)
    expect(page.get_by_role("heading", name="Retargeting", exact=True)).to_be_visible()

    page.goto(link)  # used: it never works twice
    expect(page.get_by_role("heading", name="Create the first superadmin")).to_have_count(0)
    expect(page.get_by_text("This setup link is no longer valid", exact=False)).to_be_visible()
