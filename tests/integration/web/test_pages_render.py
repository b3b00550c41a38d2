"""The superadmin page as a browser without JavaScript gets it: access, sections, safety."""

from __future__ import annotations

import re
import time

import pytest

from retargeting.db import audit, settings_store
from retargeting.runtime import Runtime
from tests.factories import ACCESS_TOKEN, PIXEL_ID, make_org, make_pixel
from tests.integration.web.conftest import SUPERADMIN_EMAIL, USER_EMAIL
from tests.integration.web.page_support import (
    PAGE,
    make_superadmin,
    make_user,
    parse,
    sign_in,
)
from tests.support.testclient import TestClient

EVENT_NAMES = (
    "GreetNow_WidgetView",
    "GreetNow_WidgetView_B2B",
    "GreetNow_CallStarted",
    "Lead",
    "GreetNow_CallStarted_B2B",
)


@pytest.fixture
def signed_in(client: TestClient, runtime: Runtime) -> str:
    make_superadmin(runtime)
    return sign_in(client)


def test_a_stranger_is_sent_to_sign_in(client: TestClient) -> None:
    answer = client.get(f"{PAGE}?search=acme", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Fplatform%2Fretargeting%3Fsearch%3Dacme"


def test_a_user_who_is_not_a_superadmin_sees_a_403_page(
    client: TestClient, runtime: Runtime
) -> None:
    make_user(runtime)
    sign_in_answer = sign_in_as_user(client)
    assert sign_in_answer.status_code == 403
    assert "You need to be a superadmin to see this page" in sign_in_answer.text
    doc = parse(sign_in_answer.text)
    [logout] = doc.find_all("form", action="/logout")
    assert logout.find("button").words == "Sign out"
    assert USER_EMAIL in sign_in_answer.text


def sign_in_as_user(client: TestClient) -> object:
    login = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
    assert csrf
    from tests.integration.web.conftest import PASSWORD

    client.post(
        "/login",
        data={"email": USER_EMAIL, "password": PASSWORD, "csrf_token": csrf.group(1)},
        follow_redirects=False,
    )
    return client.get(PAGE)


@pytest.mark.usefixtures("signed_in")
def test_the_layout(client: TestClient) -> None:
    answer = client.get(PAGE)
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    doc = parse(answer.text)
    topbar = doc.find_all("header")[0]  # the page's banner; sections have their own headers
    assert topbar.find_all("a")[0].words == "GreetNow · Platform"
    assert SUPERADMIN_EMAIL in topbar.words
    logout = doc.find("form", action="/logout")
    assert logout.find("input", name="csrf_token").attrs["value"]
    assert [h.words for h in doc.find_all("h1")] == ["Retargeting"]
    assert len(doc.find_all("main")) == 1
    meta = doc.find("meta", name="csrf-token")
    assert meta.attrs["content"] == logout.find("input", name="csrf_token").attrs["value"]
    headings = [h.words for h in doc.find_all("h2")]
    for heading in ("Pixel configuration", "Delivery health", "Organizations", "Recent changes"):
        assert heading in headings


@pytest.mark.usefixtures("signed_in")
def test_nothing_inline_for_the_content_security_policy(client: TestClient) -> None:
    answer = client.get(PAGE)
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    doc = parse(answer.text)
    scripts = doc.find_all("script")
    assert scripts, "the page has its scripts"
    for script in scripts:
        assert script.attrs.get("src", "").startswith("/static/")
        assert "defer" in script.attrs
        assert script.text.strip() == ""
    assert doc.find_all("style") == []
    assert " style=" not in answer.text
    assert re.search(r"\son[a-z]+=", answer.text) is None  # no onclick= and friends
    for path in [s.attrs["src"] for s in scripts] + ["/static/app.css"]:
        assert client.get(path).status_code == 200


@pytest.mark.usefixtures("signed_in")
def test_not_configured(client: TestClient) -> None:
    doc = parse(client.get(PAGE).text)
    summary = doc.find("section", id="summary")
    assert "Pixel Status Not configured" in summary.words
    assert "Organizations enabled 0 of 0" in summary.words
    for name in EVENT_NAMES:
        assert name in summary.find("ul").words
    assert "The pixel is not configured" in doc.find(data_warning_box="").words
    test_button = doc.find("button", data_test_event_button="")
    assert "disabled" in test_button.attrs
    why = doc.find(id=test_button.attrs["aria-describedby"])
    assert "Pixel ID and Access Token" in why.words
    assert "No token yet" in doc.find(id="access-token-hint").words


@pytest.mark.usefixtures("signed_in")
def test_configured_but_disabled(client: TestClient, runtime: Runtime) -> None:
    make_pixel(runtime.engine, runtime.cipher, enabled=False)
    text = client.get(PAGE).text
    doc = parse(text)
    assert "Pixel Status Configured (Disabled)" in doc.find("section", id="summary").words
    assert "The pixel is not configured" not in text
    assert "The pixel is disabled" in doc.find(data_warning_box="").words


@pytest.mark.usefixtures("signed_in")
def test_active(client: TestClient, runtime: Runtime) -> None:
    make_pixel(runtime.engine, runtime.cipher, test_event_code="TEST42")
    make_org(runtime.engine, "org-a", retargeting_enabled=True)
    make_org(runtime.engine, "org-b")
    answer = client.get(PAGE)
    doc = parse(answer.text)
    assert "Pixel Status Active" in doc.find("section", id="summary").words
    assert "Organizations enabled 1 of 2" in doc.find("section", id="summary").words
    assert doc.find_all(data_warning_box="") == []
    form = doc.find("form", data_pixel_form="")
    assert form.find("input", name="pixel_id").attrs["value"] == PIXEL_ID
    assert form.find("input", name="test_event_code").attrs["value"] == "TEST42"
    enabled = form.find("input", name="enabled")
    assert (enabled.attrs["role"], enabled.attrs["type"]) == ("switch", "checkbox")
    assert "checked" in enabled.attrs
    token = form.find("input", name="access_token")
    assert (token.attrs["type"], token.attrs["value"]) == ("password", "")
    hint = doc.find(id="access-token-hint").words
    assert f"A token is set (…{ACCESS_TOKEN[-4:]})" in hint
    assert "leave empty to keep it" in hint
    assert ACCESS_TOKEN not in answer.text
    assert "disabled" not in doc.find("button", data_test_event_button="").attrs


@pytest.mark.usefixtures("signed_in")
def test_every_control_has_a_label(client: TestClient, runtime: Runtime) -> None:
    make_org(runtime.engine, "org-a", name="Acme")
    doc = parse(client.get(PAGE).text)
    labels = {label.attrs.get("for"): label.words for label in doc.find_all("label")}
    expected = {
        "pixel-enabled": "Enable pixel",
        "pixel-id": "Pixel ID",
        "access-token": "Access Token",
        "test-event-code": "Test Event Code",
        "org-search": "Search organizations",
    }
    for control_id, name in expected.items():
        assert labels[control_id] == name
        control = doc.find(id=control_id)
        assert control.tag == "input"
    assert doc.find(id="org-search").attrs["type"] == "search"
    assert doc.find("button", data_save="").words == "Save"
    assert doc.find("button", data_test_event_button="").words == "Send test event"
    link = [a for a in doc.find_all("a") if a.words == "Facebook Events Manager"]
    assert [a.attrs["href"] for a in link] == ["https://business.facebook.com/events_manager2"]


@pytest.mark.usefixtures("signed_in")
def test_delivery_health_and_the_pause(client: TestClient, runtime: Runtime) -> None:
    make_pixel(runtime.engine, runtime.cipher)
    doc = parse(client.get(PAGE).text)
    delivery = doc.find("section", id="delivery")
    rows = [row.words for row in delivery.find("tbody").find_all("tr")]
    assert [row.split()[0] for row in rows] == list(EVENT_NAMES)
    assert rows[0] == "GreetNow_WidgetView 0 0 0 0 Never"
    assert "No delivery errors." in delivery.words
    assert doc.find_all(data_paused_banner="") == []

    with runtime.engine.begin() as conn:
        pause = settings_store.DeliveryPause(
            reason="Error validating access token: Session has expired",
            code=190,
            error_subcode=463,
            fbtrace_id="AbCdTrace1",
            since=time.time() - 120,
        )
        settings_store.write_pause(conn, pause, time.time())
    runtime.snapshot.refresh()
    banner = parse(client.get(PAGE).text).find(data_paused_banner="")
    assert banner.attrs["role"] == "alert"
    assert "Error validating access token: Session has expired" in banner.words
    assert "AbCdTrace1" in banner.words
    assert "Save a new access token to resume; 0 events are waiting." in banner.words


@pytest.mark.usefixtures("signed_in")
def test_recent_changes_in_words(client: TestClient, runtime: Runtime) -> None:
    now = time.time()
    with runtime.engine.begin() as conn:
        audit.record(
            conn,
            actor="ops@greetnow.example",
            action="organization.retargeting",
            target="organization:org-a",
            old_value={"retargeting_enabled": False, "name": "Acme"},
            new_value={"retargeting_enabled": True, "name": "Acme"},
            now=now - 300,
        )
        audit.record(
            conn,
            actor="ops@greetnow.example",
            action="pixel.update",
            target="greetnow_facebook_pixel",
            old_value={"enabled": False, "pixel_id": "", "access_token_set": False},
            new_value={
                "enabled": True,
                "pixel_id": "42",
                "access_token_set": True,
                "access_token_last4": "WXYZ",
            },
            now=now - 60,
        )
    section = parse(client.get(PAGE).text).find("section", id="audit")
    items = section.find_all("li")
    assert "Saved pixel settings" in items[0].words
    assert "New access token (…WXYZ)" in items[0].words
    assert "Enabled retargeting for Acme" in items[1].words
    assert "ops@greetnow.example" in items[1].words
    when = items[1].find("time")
    assert when.words.startswith("5 minutes ago")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", when.attrs["datetime"])
    assert "UTC" in when.words  # the absolute time too


@pytest.mark.usefixtures("signed_in")
def test_names_are_escaped(client: TestClient, runtime: Runtime) -> None:
    make_org(runtime.engine, "org-x", name="<script>alert(1)</script>")
    text = client.get(PAGE).text
    assert "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    switch = parse(text).find("button", role="switch")
    assert switch.attrs["aria-label"] == "Retargeting for <script>alert(1)</script>"
