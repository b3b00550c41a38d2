"""The delivery report: counts for all five event names, Meta's last errors, and the pause."""

from __future__ import annotations

import time

from retargeting.db import outbox, settings_store
from retargeting.domain.events import ALL_EVENT_NAMES
from retargeting.runtime import Runtime
from tests.factories import make_org, make_pixel
from tests.support import api_bodies
from tests.support.testclient import TestClient

DELIVERY = "/api/v1/platform/retargeting/delivery"

Headers = dict[str, str]


def test_an_empty_outbox_reports_zeros_for_every_event_name(
    client: TestClient, admin: Headers
) -> None:
    body = client.get(DELIVERY, headers=admin).json()
    assert body["pixel_state"] == "not_configured"
    assert body["paused"] is None
    assert body["last_errors"] == []
    assert [row["event_name"] for row in body["events"]] == list(ALL_EVENT_NAMES)
    assert {
        (row["queued"], row["delivered"], row["failed"], row["expired"], row["last_delivered_at"])
        for row in body["events"]
    } == {(0, 0, 0, 0, None)}


def test_outcomes_and_errors_are_reported(
    client: TestClient, admin: Headers, ingest: Headers, runtime: Runtime
) -> None:
    make_org(runtime.engine, "org-1", retargeting_enabled=True)
    make_pixel(runtime.engine)
    runtime.snapshot.refresh()
    for n in range(3):
        body = api_bodies.widget_view(visitor_id=f"v-{n}")
        assert (
            client.post("/api/v1/events/widget-view", json=body, headers=ingest).status_code == 202
        )
    now = time.time()
    with runtime.engine.begin() as conn:
        claimed = outbox.claim(conn, worker_id="w", now=now, lease_seconds=30, limit=4)
        delivered = [e.id for e in claimed if e.event_name == "GreetNow_WidgetView"][:2]
        failed = [e.id for e in claimed if e.event_name == "GreetNow_WidgetView_B2B"][:1]
        outbox.mark_delivered(conn, delivered, worker_id="w", fbtrace_id="TRACE-OK", now=now)
        outbox.mark_failed(
            conn,
            failed,
            worker_id="w",
            error="Invalid parameter (code 100, subcode 2804019)",
            error_code=100,
            fbtrace_id="TRACE-BAD",
            now=now,
        )
    body = client.get(DELIVERY, headers=admin).json()
    rows = {row["event_name"]: row for row in body["events"]}
    assert body["pixel_state"] == "active"
    assert (rows["GreetNow_WidgetView"]["queued"], rows["GreetNow_WidgetView"]["delivered"]) == (
        1,
        2,
    )
    assert rows["GreetNow_WidgetView"]["last_delivered_at"] is not None
    assert (
        rows["GreetNow_WidgetView_B2B"]["queued"],
        rows["GreetNow_WidgetView_B2B"]["failed"],
    ) == (
        2,
        1,
    )
    assert rows["Lead"]["queued"] == 0
    [error] = body["last_errors"]
    assert error["event_name"] == "GreetNow_WidgetView_B2B"
    assert error["status"] == "failed"
    assert error["message"] == "Invalid parameter (code 100, subcode 2804019)"
    assert (error["code"], error["fbtrace_id"]) == (100, "TRACE-BAD")


def test_a_pause_is_reported_with_metas_reason(
    client: TestClient, admin: Headers, runtime: Runtime
) -> None:
    make_pixel(runtime.engine)
    pause = settings_store.DeliveryPause(
        reason="Error validating access token: Session has expired (code 190, subcode 463)",
        code=190,
        error_subcode=463,
        fbtrace_id="TRACE-190",
        since=1_767_225_600.0,
    )
    with runtime.engine.begin() as conn:
        settings_store.write_pause(conn, pause, time.time())
    runtime.snapshot.refresh()
    paused = client.get(DELIVERY, headers=admin).json()["paused"]
    assert paused == {
        "reason": pause.reason,
        "code": 190,
        "error_subcode": 463,
        "since": "2026-01-01T00:00:00Z",
        "fbtrace_id": "TRACE-190",
    }
