"""The pixel settings through the API: state machine, write-only token, audit, live snapshot."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.fernet import Fernet

from retargeting.domain.pixel import PixelState
from retargeting.runtime import Runtime
from retargeting.security import TokenCipher
from tests.factories import ACCESS_TOKEN, PIXEL_ID, make_pixel
from tests.support.testclient import TestClient

PIXEL = "/api/v1/platform/retargeting/pixel"
AUDIT = "/api/v1/platform/retargeting/audit"

Headers = dict[str, str]


def live_state(runtime: Runtime) -> PixelState:
    """The state this process obeys: its settings snapshot."""
    return runtime.snapshot.current.pixel.state


def pixel_body(**overrides: Any) -> dict[str, Any]:
    return {"pixel_id": PIXEL_ID, "test_event_code": "", "enabled": False, **overrides}


def test_a_fresh_pixel_is_not_configured(client: TestClient, admin: Headers) -> None:
    response = client.get(PIXEL, headers=admin)
    assert response.status_code == 200
    assert response.json() == {
        "pixel_id": "",
        "access_token_set": False,
        "access_token_last4": None,
        "test_event_code": "",
        "enabled": False,
        "state": "not_configured",
    }


def test_state_goes_not_configured_then_disabled_then_active(
    client: TestClient, admin: Headers, runtime: Runtime
) -> None:
    saved = client.put(PIXEL, json=pixel_body(access_token=ACCESS_TOKEN), headers=admin)
    assert saved.status_code == 200
    assert saved.json()["state"] == "disabled"
    assert live_state(runtime) is PixelState.DISABLED  # seen here at once

    enabled = client.put(PIXEL, json=pixel_body(enabled=True), headers=admin)
    assert enabled.json()["state"] == "active"
    assert live_state(runtime) is PixelState.ACTIVE
    assert client.get(PIXEL, headers=admin).json()["state"] == "active"

    disabled = client.put(PIXEL, json=pixel_body(enabled=False), headers=admin)
    assert disabled.json()["state"] == "disabled"


def test_the_token_is_never_returned(client: TestClient, admin: Headers) -> None:
    saved = client.put(
        PIXEL, json=pixel_body(access_token=ACCESS_TOKEN, enabled=True), headers=admin
    )
    fetched = client.get(PIXEL, headers=admin)
    audit = client.get(AUDIT, headers=admin)
    for response in (saved, fetched, audit):
        assert response.status_code == 200
        assert ACCESS_TOKEN not in response.text
        assert ACCESS_TOKEN[:-4] not in response.text
    assert fetched.json()["access_token_set"] is True
    assert fetched.json()["access_token_last4"] == ACCESS_TOKEN[-4:]


@pytest.mark.parametrize("kept", [{}, {"access_token": None}, {"access_token": ""}])
def test_the_token_is_kept_when_not_sent(
    client: TestClient, admin: Headers, runtime: Runtime, kept: dict[str, Any]
) -> None:
    client.put(PIXEL, json=pixel_body(access_token=ACCESS_TOKEN), headers=admin)
    response = client.put(PIXEL, json=pixel_body(enabled=True, **kept), headers=admin)
    assert response.status_code == 200
    assert response.json()["access_token_set"] is True
    assert runtime.snapshot.current.pixel.access_token == ACCESS_TOKEN


def test_a_new_token_replaces_the_old_one(
    client: TestClient, admin: Headers, runtime: Runtime
) -> None:
    client.put(PIXEL, json=pixel_body(access_token=ACCESS_TOKEN), headers=admin)
    client.put(PIXEL, json=pixel_body(access_token="EAAnewtoken9876543210zyxw"), headers=admin)
    assert runtime.snapshot.current.pixel.access_token == "EAAnewtoken9876543210zyxw"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (pixel_body(pixel_id="12ab", access_token=ACCESS_TOKEN), "pixel_id"),
        (pixel_body(pixel_id="", access_token=ACCESS_TOKEN, enabled=True), "pixel_id"),
        (pixel_body(enabled=True), "access_token"),  # enabling without a token
        (pixel_body(access_token="has space in it"), "access_token"),
        (pixel_body(test_event_code="TEST 1"), "test_event_code"),
        (pixel_body(enabled="yes"), "enabled"),
        ({"pixel_id": PIXEL_ID, "enabled": False}, "test_event_code"),
    ],
)
def test_rejected_updates_name_the_field(
    client: TestClient, admin: Headers, body: dict[str, Any], field: str
) -> None:
    response = client.put(PIXEL, json=body, headers=admin)
    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["detail"]] == [["body", field]]
    assert client.get(PIXEL, headers=admin).json()["state"] == "not_configured"


def test_a_rejected_token_is_not_echoed(client: TestClient, admin: Headers) -> None:
    secret = "EAA" + "x" * 2000  # too long to be a token; the message must not quote it
    response = client.put(PIXEL, json=pixel_body(access_token=secret), headers=admin)
    assert response.status_code == 422
    assert "xxxxxxxx" not in response.text


def test_every_change_is_audited_with_the_token_masked(client: TestClient, admin: Headers) -> None:
    client.put(PIXEL, json=pixel_body(access_token=ACCESS_TOKEN), headers=admin)
    client.put(PIXEL, json=pixel_body(enabled=True, test_event_code="TEST123"), headers=admin)
    client.put(
        PIXEL, json=pixel_body(enabled=True, test_event_code="TEST123"), headers=admin
    )  # no-op
    response = client.get(AUDIT, headers=admin)
    entries = response.json()["items"]
    assert [e["action"] for e in entries] == ["pixel.update", "pixel.update"]
    newest = entries[0]
    assert newest["actor"] == "admin@greetnow.example"
    assert newest["old_value"]["state"] == "disabled"
    assert newest["new_value"]["state"] == "active"
    assert newest["new_value"]["test_event_code"] == "TEST123"
    assert newest["new_value"]["access_token_last4"] == ACCESS_TOKEN[-4:]
    assert ACCESS_TOKEN not in response.text


def test_audit_limit(client: TestClient, admin: Headers) -> None:
    for code in ("A1", "A2", "A3"):
        client.put(PIXEL, json=pixel_body(test_event_code=code), headers=admin)
    assert len(client.get(AUDIT, params={"limit": 2}, headers=admin).json()["items"]) == 2
    for bad in (0, 201, "x"):
        response = client.get(AUDIT, params={"limit": bad}, headers=admin)
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["query", "limit"]


def test_a_token_under_another_secret_key_is_a_clear_error(
    client: TestClient, admin: Headers, runtime: Runtime
) -> None:
    make_pixel(runtime.engine, TokenCipher(Fernet.generate_key().decode()))
    response = client.get(PIXEL, headers=admin)
    assert response.status_code == 500
    assert "RETARGETING_SECRET_KEY" in response.json()["detail"]
