"""The page's form posts with JavaScript off: 303 back with a message, or 422 next to the field."""

from __future__ import annotations

import pytest

from retargeting.db import audit, orgs, settings_store
from retargeting.db.engine import READ_ONLY
from retargeting.domain.pixel import PixelSettings
from retargeting.runtime import Runtime
from tests.factories import ACCESS_TOKEN, PIXEL_ID, make_org, make_pixel
from tests.integration.web.page_support import PAGE, Element, make_superadmin, parse, sign_in
from tests.support.testclient import TestClient

NEW_TOKEN = "EAAnewtoken0123456789abcdefghij9876"


@pytest.fixture
def csrf(client: TestClient, runtime: Runtime) -> str:
    make_superadmin(runtime)
    return sign_in(client)


def stored_pixel(runtime: Runtime) -> PixelSettings:
    with runtime.engine.connect().execution_options(**{READ_ONLY: True}) as conn:
        return settings_store.read_pixel(conn, runtime.cipher)


def flash(page: Element) -> Element:
    [message] = page.find_all(data_flash="")
    return message


def save_pixel(client: TestClient, csrf: str, **fields: str) -> object:
    data = {"csrf_token": csrf, "pixel_id": "", "access_token": "", "test_event_code": ""}
    data.update(fields)
    return client.post(f"{PAGE}/pixel", data=data, follow_redirects=False)


def test_saving_the_pixel_redirects_with_a_message_shown_once(
    client: TestClient, runtime: Runtime, csrf: str
) -> None:
    answer = save_pixel(
        client,
        csrf,
        pixel_id=PIXEL_ID,
        access_token=ACCESS_TOKEN,
        enabled="on",
        test_event_code="TEST1",
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"{PAGE}#pixel"
    stored = stored_pixel(runtime)
    assert (stored.pixel_id, stored.access_token, stored.enabled, stored.test_event_code) == (
        PIXEL_ID,
        ACCESS_TOKEN,
        True,
        "TEST1",
    )
    assert runtime.snapshot.current.pixel.enabled  # this process obeys at once

    page = client.get(PAGE)
    message = flash(parse(page.text))
    assert (message.attrs["role"], message.words) == ("status", "Settings saved")
    assert ACCESS_TOKEN not in page.text
    assert "Pixel Status Active" in parse(page.text).find("section", id="summary").words
    assert parse(client.get(PAGE).text).find_all(data_flash="") == []  # once only


def test_an_empty_token_keeps_the_stored_one(
    client: TestClient, runtime: Runtime, csrf: str
) -> None:
    make_pixel(runtime.engine, runtime.cipher, enabled=False)
    assert save_pixel(client, csrf, pixel_id=PIXEL_ID, enabled="on").status_code == 303
    stored = stored_pixel(runtime)
    assert (stored.access_token, stored.enabled) == (ACCESS_TOKEN, True)


def test_unchecked_switch_disables_the_pixel(
    client: TestClient, runtime: Runtime, csrf: str
) -> None:
    make_pixel(runtime.engine, runtime.cipher)
    assert save_pixel(client, csrf, pixel_id=PIXEL_ID).status_code == 303
    assert stored_pixel(runtime).enabled is False


@pytest.mark.parametrize(
    ("fields", "field_id", "message"),
    [
        (
            {"pixel_id": "12ab"},
            "pixel-id",
            "Pixel ID must be the pixel's numeric ID (digits only).",
        ),
        (
            {"pixel_id": "", "enabled": "on"},
            "pixel-id",
            "Pixel ID is required to enable the pixel.",
        ),
        (
            {"pixel_id": PIXEL_ID, "enabled": "on"},
            "access-token",
            "Access Token is required to enable the pixel.",
        ),
        ({"test_event_code": "no spaces"}, "test-event-code", "Test Event Code must be letters"),
    ],
)
def test_a_field_error_is_shown_next_to_the_field(
    client: TestClient,
    runtime: Runtime,
    csrf: str,
    fields: dict[str, str],
    field_id: str,
    message: str,
) -> None:
    answer = save_pixel(client, csrf, **fields)
    assert answer.status_code == 422
    doc = parse(answer.text)
    control = doc.find("input", id=field_id)
    assert control.attrs["aria-invalid"] == "true"
    error = doc.find(id=f"{field_id}-error")
    assert error.words.startswith(message)
    assert error.attrs["id"] in control.attrs["aria-describedby"].split()
    assert len(doc.find_all(aria_invalid="true")) == 1
    # What was typed comes back (never the token), and nothing was stored.
    if "pixel_id" in fields:
        assert doc.find("input", name="pixel_id").attrs["value"] == fields["pixel_id"]
    assert ("checked" in doc.find("input", id="pixel-enabled").attrs) == ("enabled" in fields)
    assert stored_pixel(runtime) == PixelSettings()


def test_a_rejected_token_is_never_echoed(client: TestClient, csrf: str) -> None:
    answer = save_pixel(client, csrf, pixel_id="x1", access_token="EAAsecret0123456789abcdef")
    assert answer.status_code == 422
    assert "EAAsecret" not in answer.text


def test_a_form_without_the_csrf_token_is_refused(
    client: TestClient, runtime: Runtime, csrf: str
) -> None:
    answer = save_pixel(client, "forged", pixel_id=PIXEL_ID)
    assert answer.status_code == 403
    assert stored_pixel(runtime) == PixelSettings()


def test_a_stranger_posting_is_sent_to_sign_in(client: TestClient) -> None:
    answer = client.post(f"{PAGE}/pixel", data={"pixel_id": "1"}, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=")


def toggle(
    client: TestClient, csrf: str, org_id: str, enabled: str, return_query: str = ""
) -> object:
    return client.post(
        f"{PAGE}/organizations/{org_id}",
        data={"csrf_token": csrf, "retargeting_enabled": enabled, "return_query": return_query},
        follow_redirects=False,
    )


def test_switching_an_organization_on_and_off(
    client: TestClient, runtime: Runtime, csrf: str
) -> None:
    make_pixel(runtime.engine, runtime.cipher)
    make_org(runtime.engine, "org-a", name="Acme Dental")
    answer = toggle(client, csrf, "org-a", "true", "?search=acme&page=1&sort=calls&evil=x")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"{PAGE}?search=acme&sort=calls#organizations"
    doc = parse(client.get(f"{PAGE}?search=acme&sort=calls").text)
    assert flash(doc).words == "Enabled retargeting for Acme Dental"
    switch = doc.find("button", role="switch")
    assert (switch.attrs["aria-checked"], switch.attrs["value"]) == ("true", "false")
    assert "Organizations enabled 1 of 1" in doc.find("section", id="summary").words
    assert "Enabled retargeting for Acme Dental" in doc.find("section", id="audit").words

    assert toggle(client, csrf, "org-a", "false").status_code == 303
    doc = parse(client.get(PAGE).text)
    assert flash(doc).words == "Disabled retargeting for Acme Dental"
    assert doc.find("button", role="switch").attrs["aria-checked"] == "false"


def test_switching_on_before_the_pixel_is_active_is_explained(
    client: TestClient, runtime: Runtime, csrf: str
) -> None:
    make_org(runtime.engine, "org-a", name="Acme Dental")
    assert toggle(client, csrf, "org-a", "true").status_code == 303
    message = flash(parse(client.get(PAGE).text))
    assert message.attrs["role"] == "alert"
    assert message.words.startswith("Could not update Acme Dental: ")
    assert "not configured" in message.words
    with runtime.engine.connect() as conn:
        org = orgs.get(conn, "org-a")
    assert org is not None
    assert org.retargeting_enabled is False


def test_switching_off_is_allowed_while_the_pixel_is_off(
    client: TestClient, runtime: Runtime, csrf: str
) -> None:
    make_pixel(runtime.engine, runtime.cipher)
    make_org(runtime.engine, "org-a", name="Acme Dental", retargeting_enabled=True)
    make_pixel(runtime.engine, runtime.cipher, enabled=False)
    assert toggle(client, csrf, "org-a", "false").status_code == 303
    assert flash(parse(client.get(PAGE).text)).words == "Disabled retargeting for Acme Dental"


def test_an_unknown_organization(client: TestClient, csrf: str) -> None:
    assert toggle(client, csrf, "org-gone", "true").status_code == 303
    message = flash(parse(client.get(PAGE).text))
    assert message.words.startswith("Could not update org-gone:")


def test_a_toggle_without_the_csrf_token_is_refused(
    client: TestClient, runtime: Runtime, csrf: str
) -> None:
    make_pixel(runtime.engine, runtime.cipher)
    make_org(runtime.engine, "org-a")
    assert toggle(client, "forged", "org-a", "true").status_code == 403
    with runtime.engine.connect() as conn:
        assert audit.recent(conn) == []


def test_a_get_after_sign_in_lands_on_the_page(client: TestClient, csrf: str) -> None:
    for path in ("/pixel", "/test-event", "/organizations/org-a"):
        answer = client.get(f"{PAGE}{path}", follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith(PAGE)
