"""The platform servers' API end to end: organizations, events, batches, limits, auth."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import select

from retargeting.db import orgs
from retargeting.db.tables import outbox_events
from retargeting.runtime import Runtime
from retargeting.services import credentials
from retargeting.web.app import BATCH_BODY_LIMIT_BYTES, BODY_LIMIT_BYTES
from retargeting.web.schemas import MAX_BATCH_EVENTS
from tests.factories import make_org, make_pixel
from tests.integration.web.conftest import bearer
from tests.support import api_bodies
from tests.support.testclient import TestClient

WIDGET_VIEW = "/api/v1/events/widget-view"
CALL_STARTED = "/api/v1/events/call-started"
BATCH = "/api/v1/events/batch"

Headers = dict[str, str]


def queued_names(runtime: Runtime) -> list[str]:
    with runtime.engine.connect() as conn:
        return sorted(conn.execute(select(outbox_events.c.event_name)).scalars())


def detail_locs(response: Any) -> list[list[Any]]:
    assert response.status_code == 422, response.text
    return [error["loc"] for error in response.json()["detail"]]


def test_an_organization_is_created_then_updated(client: TestClient, ingest: Headers) -> None:
    created = client.put(
        "/api/v1/organizations/org-7", json=api_bodies.organization(), headers=ingest
    )
    assert created.status_code == 201
    assert created.json() == {
        "id": "org-7",
        "name": "Acme Dental",
        "status": "active",
        "retargeting_enabled": False,
        "pageview_count": 0,
        "call_count": 0,
    }
    updated = client.put(
        "/api/v1/organizations/org-7",
        json={"name": "Acme Dental Group", "status": "suspended"},
        headers=ingest,
    )
    assert updated.status_code == 200
    assert (updated.json()["name"], updated.json()["status"]) == ("Acme Dental Group", "suspended")


def test_an_update_never_touches_the_retargeting_flag(
    client: TestClient, ingest: Headers, runtime: Runtime
) -> None:
    make_org(runtime.engine, "org-1", retargeting_enabled=True)
    response = client.put(
        "/api/v1/organizations/org-1", json=api_bodies.organization(), headers=ingest
    )
    assert response.status_code == 200
    assert response.json()["retargeting_enabled"] is True


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        ("/api/v1/organizations/org%24x", api_bodies.organization(), ["path", "org_id"]),
        ("/api/v1/organizations/" + "x" * 101, api_bodies.organization(), ["path", "org_id"]),
        ("/api/v1/organizations/org-1", api_bodies.organization(name=" "), ["body", "name"]),
        ("/api/v1/organizations/org-1", {"name": "Acme"}, ["body", "status"]),
        ("/api/v1/organizations/org-1", api_bodies.organization(name="A\x00"), ["body", "name"]),
        (
            "/api/v1/organizations/org-1",
            api_bodies.organization(status="x" * 51),
            ["body", "status"],
        ),
    ],
)
def test_organization_validation(
    client: TestClient, ingest: Headers, path: str, body: dict[str, Any], loc: list[Any]
) -> None:
    assert detail_locs(client.put(path, json=body, headers=ingest)) == [loc]


def test_a_widget_view_on_a_b2b_org_queues_both_events(
    client: TestClient, ingest: Headers, runtime: Runtime
) -> None:
    make_org(runtime.engine, "org-1", retargeting_enabled=True)
    make_pixel(runtime.engine)
    runtime.snapshot.refresh()
    response = client.post(WIDGET_VIEW, json=api_bodies.widget_view(), headers=ingest)
    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "events_queued": 2}
    assert queued_names(runtime) == ["GreetNow_WidgetView", "GreetNow_WidgetView_B2B"]


def test_a_call_start_queues_call_and_lead(
    client: TestClient, ingest: Headers, runtime: Runtime
) -> None:
    make_org(runtime.engine, "org-1")
    make_pixel(runtime.engine)
    runtime.snapshot.refresh()
    response = client.post(CALL_STARTED, json=api_bodies.call_started(), headers=ingest)
    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "events_queued": 2}
    assert queued_names(runtime) == ["GreetNow_CallStarted", "Lead"]
    with runtime.engine.connect() as conn:
        org = orgs.get(conn, "org-1")
    assert org is not None
    assert org.call_count == 1


def test_an_inactive_pixel_counts_but_queues_nothing(
    client: TestClient, ingest: Headers, runtime: Runtime
) -> None:
    make_org(runtime.engine, "org-1", retargeting_enabled=True)
    response = client.post(WIDGET_VIEW, json=api_bodies.widget_view(), headers=ingest)
    assert response.json() == {"accepted": 1, "events_queued": 0}
    with runtime.engine.connect() as conn:
        org = orgs.get(conn, "org-1")
    assert org is not None
    assert org.pageview_count == 1


def test_a_batch_records_every_event(client: TestClient, ingest: Headers, runtime: Runtime) -> None:
    make_org(runtime.engine, "org-1")
    make_org(runtime.engine, "org-2", retargeting_enabled=True)
    make_pixel(runtime.engine)
    runtime.snapshot.refresh()
    events = [
        api_bodies.batch_item("widget_view", organization_id="org-1"),
        api_bodies.batch_item("widget_view", organization_id="org-2", visitor_id="v-2"),
        api_bodies.batch_item("call_started", organization_id="org-2", call_id="c-2"),
    ]
    response = client.post(BATCH, json={"events": events}, headers=ingest)
    assert response.status_code == 202
    assert response.json() == {"accepted": 3, "events_queued": 6}
    assert queued_names(runtime) == sorted(
        [
            "GreetNow_WidgetView",
            "GreetNow_WidgetView",
            "GreetNow_WidgetView_B2B",
            "GreetNow_CallStarted",
            "Lead",
            "GreetNow_CallStarted_B2B",
        ]
    )


def test_queued_events_are_counted_in_the_metrics(
    client: TestClient, ingest: Headers, runtime: Runtime
) -> None:
    make_org(runtime.engine, "org-1", retargeting_enabled=True)
    make_pixel(runtime.engine)
    runtime.snapshot.refresh()
    client.post(WIDGET_VIEW, json=api_bodies.widget_view(), headers=ingest)
    client.post(WIDGET_VIEW, json=api_bodies.widget_view(visitor_id="v-2"), headers=ingest)
    text = client.get("/metrics").text
    assert 'retargeting_events_queued_total{event_name="GreetNow_WidgetView"} 2.0' in text
    assert 'retargeting_events_queued_total{event_name="GreetNow_WidgetView_B2B"} 2.0' in text


def test_an_unknown_organization_is_a_422_naming_the_field(
    client: TestClient, ingest: Headers
) -> None:
    response = client.post(
        WIDGET_VIEW, json=api_bodies.widget_view(organization_id="nope"), headers=ingest
    )
    [error] = response.json()["detail"]
    assert response.status_code == 422
    assert error["loc"] == ["body", "organization_id"]
    assert error["msg"] == "unknown organization: nope"


def test_a_batch_with_an_unknown_organization_records_nothing(
    client: TestClient, ingest: Headers, runtime: Runtime
) -> None:
    make_org(runtime.engine, "org-1")
    events = [
        api_bodies.batch_item(organization_id="org-1"),
        api_bodies.batch_item(organization_id="ghost"),
        api_bodies.batch_item("call_started", organization_id="ghost"),
    ]
    response = client.post(BATCH, json={"events": events}, headers=ingest)
    assert detail_locs(response) == [
        ["body", "events", 1, "organization_id"],
        ["body", "events", 2, "organization_id"],
    ]
    assert response.json()["detail"][0]["msg"] == "unknown organization: ghost"
    with runtime.engine.connect() as conn:
        org = orgs.get(conn, "org-1")
    assert org is not None
    assert org.pageview_count == 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"page_url": "customer.example/pricing"}, "page_url"),
        ({"client_ip_address": "300.1.2.3"}, "client_ip_address"),
        ({"event_time": int(time.time()) - 8 * 86_400}, "event_time"),
        ({"event_time": int(time.time()) + 3600}, "event_time"),
        ({"fbp": "fb.1.nope"}, "fbp"),
        ({"fbc": "fbclid=abc"}, "fbc"),
        ({"client_user_agent": ""}, "client_user_agent"),
        ({"visitor_id": None}, "visitor_id"),
    ],
)
def test_validation_errors_name_the_field(
    client: TestClient, ingest: Headers, overrides: dict[str, Any], field: str
) -> None:
    body = api_bodies.widget_view(**overrides)
    assert detail_locs(client.post(WIDGET_VIEW, json=body, headers=ingest)) == [["body", field]]


def test_validation_errors_do_not_echo_the_input(client: TestClient, ingest: Headers) -> None:
    body = api_bodies.widget_view(client_ip_address="198.51.100.999")
    response = client.post(WIDGET_VIEW, json=body, headers=ingest)
    assert response.status_code == 422
    assert "198.51.100.999" not in response.text


def test_call_started_without_call_id_is_a_422(client: TestClient, ingest: Headers) -> None:
    body = api_bodies.call_started(call_id=None)
    assert detail_locs(client.post(CALL_STARTED, json=body, headers=ingest)) == [
        ["body", "call_id"]
    ]


def test_a_batch_over_the_limit_is_a_422(client: TestClient, ingest: Headers) -> None:
    events = [api_bodies.batch_item()] * (MAX_BATCH_EVENTS + 1)
    response = client.post(BATCH, json={"events": events}, headers=ingest)
    assert detail_locs(response) == [["body", "events"]]


def test_batch_validation_names_the_event(client: TestClient, ingest: Headers) -> None:
    events = [api_bodies.batch_item(), api_bodies.batch_item("call_started", page_url="x")]
    response = client.post(BATCH, json={"events": events}, headers=ingest)
    assert detail_locs(response) == [["body", "events", 1, "call_started", "page_url"]]


@pytest.mark.parametrize(
    "content",
    [b"{", b"[]", b"null", b'"x"', b"1e999", b'{"events": null}', b'{"events": [1]}', b"\xff\xfe"],
)
@pytest.mark.parametrize("path", [WIDGET_VIEW, CALL_STARTED, BATCH])
def test_junk_bodies_are_client_errors(
    client: TestClient, ingest: Headers, path: str, content: bytes
) -> None:
    response = client.post(
        path, content=content, headers={**ingest, "Content-Type": "application/json"}
    )
    assert response.status_code in (400, 422)
    assert "detail" in response.json()


def test_a_body_without_json_content_type_is_a_422(client: TestClient, ingest: Headers) -> None:
    response = client.post(
        WIDGET_VIEW,
        content=b"organization_id=org-1",
        headers={**ingest, "Content-Type": "text/plain"},
    )
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("path", "limit"), [(WIDGET_VIEW, BODY_LIMIT_BYTES), (BATCH, BATCH_BODY_LIMIT_BYTES)]
)
def test_oversized_bodies_are_a_413(
    client: TestClient, ingest: Headers, path: str, limit: int
) -> None:
    response = client.post(
        path, content=b" " * (limit + 1), headers={**ingest, "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]


def test_an_oversized_chunked_body_is_a_json_413(client: TestClient, ingest: Headers) -> None:
    def chunks() -> Any:
        for _ in range(3):
            yield b" " * BODY_LIMIT_BYTES

    response = client.post(
        WIDGET_VIEW, content=chunks(), headers={**ingest, "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]


def test_a_batch_between_the_two_limits_is_accepted(
    client: TestClient, ingest: Headers, runtime: Runtime
) -> None:
    make_org(runtime.engine, "org-1")
    item = api_bodies.batch_item(
        client_user_agent="U" * 1000, page_url="https://a.example/" + "p" * 2000
    )
    body = {"events": [item] * MAX_BATCH_EVENTS}  # about 3 MiB
    response = client.post(BATCH, json=body, headers=ingest)
    assert response.status_code == 202
    assert response.json()["accepted"] == MAX_BATCH_EVENTS


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/api/v1/organizations/org-1"),
        ("POST", WIDGET_VIEW),
        ("POST", CALL_STARTED),
        ("POST", BATCH),
    ],
)
def test_ingest_routes_need_a_live_api_key(
    client: TestClient, ingest_key: str, superadmin_token: str, method: str, path: str
) -> None:
    refused = [
        {},
        bearer("rtk_not-a-real-key"),
        {"Authorization": ingest_key},  # no scheme
        bearer(superadmin_token),  # a personal token is not an ingest key
    ]
    for headers in refused:
        response = client.request(method, path, json={}, headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_revoked_key_stops_working(client: TestClient, ingest: Headers, runtime: Runtime) -> None:
    make_org(runtime.engine, "org-1")
    assert (
        client.post(WIDGET_VIEW, json=api_bodies.widget_view(), headers=ingest).status_code == 202
    )
    [key] = credentials.list_api_keys(runtime.engine)
    credentials.revoke_api_key(runtime.engine, key_id=key.id, now=time.time())
    runtime.snapshot.refresh()
    assert (
        client.post(WIDGET_VIEW, json=api_bodies.widget_view(), headers=ingest).status_code == 401
    )
