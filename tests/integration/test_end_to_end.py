"""The spec's scenario matrix, server side, through a real server and the Graph API stand-in.

Rows 1-5, 9-12 and 14-16 of "Complete Scenario Matrix" (spec section 4): each test names its row.
The server runs as `retargeting serve` in its own process, with the embedded dispatcher; the test
process plays the platform's servers, the superadmin, and (row 15) a second process changing
settings behind the server's back.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from retargeting.db.engine import make_engine
from retargeting.services import credentials, pixel_settings
from tests.factories import ACCESS_TOKEN, PIXEL_ID, make_cipher
from tests.fakes.graph_stand_in import Fault, GraphStandIn
from tests.support.live_server import LiveServer, live_server, server_env

PIXEL_API = "/api/v1/platform/retargeting/pixel"


@dataclass
class World:
    server: LiveServer
    graph: GraphStandIn
    engine: Engine
    admin: httpx.Client
    platform: httpx.Client

    def org(self, org_id: str, *, b2b: bool = False) -> None:
        answer = self.platform.put(
            f"/api/v1/organizations/{org_id}", json={"name": org_id, "status": "active"}
        )
        assert answer.status_code in (200, 201), answer.text
        if b2b:
            answer = self.admin.put(
                f"/api/v1/platform/retargeting/organizations/{org_id}",
                json={"retargeting_enabled": True},
            )
            assert answer.status_code == 200, answer.text

    def pixel(self, **fields: object) -> httpx.Response:
        body = {
            "pixel_id": PIXEL_ID,
            "access_token": ACCESS_TOKEN,
            "test_event_code": "",
            "enabled": True,
            **fields,
        }
        return self.admin.put(PIXEL_API, json=body)

    def widget_view(
        self, org_id: str, visitor: str = "visitor-1", **extra: object
    ) -> dict[str, int]:
        body = {
            "organization_id": org_id,
            "visitor_id": visitor,
            "page_url": "https://customer.example/pricing",
            "client_ip_address": "203.0.113.7",
            "client_user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
            **extra,
        }
        answer = self.platform.post("/api/v1/events/widget-view", json=body)
        assert answer.status_code == 202, answer.text
        return dict(answer.json())

    def call_started(self, org_id: str, call_id: str) -> dict[str, int]:
        body = {
            "organization_id": org_id,
            "visitor_id": "visitor-1",
            "page_url": "https://customer.example/contact",
            "client_ip_address": "2001:db8::7",
            "client_user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
            "call_id": call_id,
        }
        answer = self.platform.post("/api/v1/events/call-started", json=body)
        assert answer.status_code == 202, answer.text
        return dict(answer.json())

    def delivery(self) -> dict[str, object]:
        answer = self.admin.get("/api/v1/platform/retargeting/delivery")
        assert answer.status_code == 200
        return dict(answer.json())

    def wait_received(self, count: int) -> None:
        assert self.graph.wait_for(count, 10.0), f"stand-in got {len(self.graph.received)}"

    def names(self) -> list[str]:
        return sorted(r.event["event_name"] for r in self.graph.received)


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[World]:
    engine = make_engine(database_url)
    now = time.time()
    credentials.create_user(
        engine, email="sa@example.com", password="a long password!", is_superadmin=True, now=now
    )
    token = credentials.create_token(
        engine, email="sa@example.com", name="e2e", expires_days=None, now=now
    )
    key = credentials.create_api_key(engine, name="widget-server", now=now)
    with GraphStandIn({ACCESS_TOKEN}, {PIXEL_ID}) as graph:
        env = server_env(
            database_url,
            tmp_path,
            graph.url,
            RETARGETING_GRAPH_TIMEOUT_SECONDS="0.5",
            RETARGETING_LINGER_SECONDS="0.05",
        )
        with (
            live_server(env, tmp_path) as server,
            httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {token.secret}"}
            ) as admin,
            httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {key.secret}"}
            ) as platform,
        ):
            yield World(server, graph, engine, admin, platform)
            log = server.log()
    engine.dispose()
    assert ACCESS_TOKEN not in log
    assert token.secret not in log
    assert key.secret not in log


def test_row1_happy_path_events_reach_meta(world: World) -> None:
    world.org("acme")
    assert world.pixel().json()["state"] == "active"
    assert world.widget_view("acme") == {"accepted": 1, "events_queued": 1}
    world.wait_received(1)
    [received] = world.graph.received
    assert received.event["event_name"] == "GreetNow_WidgetView"
    assert received.event["action_source"] == "website"
    assert received.pixel_id == PIXEL_ID
    assert world.graph.violations == []


def test_row2_pixel_not_configured_skips_events_but_counts(world: World) -> None:
    world.org("acme")
    assert world.admin.get(PIXEL_API).json()["state"] == "not_configured"
    assert world.widget_view("acme") == {"accepted": 1, "events_queued": 0}
    orgs = world.admin.get("/api/v1/platform/retargeting/organizations").json()
    assert orgs["items"][0]["pageview_count"] == 1
    time.sleep(0.5)
    assert world.graph.received == []


def test_row3_pixel_disabled_skips_events(world: World) -> None:
    world.org("acme")
    assert world.pixel(enabled=False).json()["state"] == "disabled"
    assert world.call_started("acme", "call-1") == {"accepted": 1, "events_queued": 0}
    time.sleep(0.5)
    assert world.graph.received == []


def test_row4_b2b_org_fires_base_and_b2b_events(world: World) -> None:
    world.pixel()
    world.org("b2b-org", b2b=True)
    assert world.widget_view("b2b-org")["events_queued"] == 2
    assert world.call_started("b2b-org", "call-9")["events_queued"] == 3
    world.wait_received(5)
    assert world.names() == sorted(
        [
            "GreetNow_WidgetView",
            "GreetNow_WidgetView_B2B",
            "GreetNow_CallStarted",
            "Lead",
            "GreetNow_CallStarted_B2B",
        ]
    )
    calls = [r.event for r in world.graph.received if "Call" in r.event["event_name"]]
    assert all(e["custom_data"]["call_id"] == "call-9" for e in calls)


def test_row5_non_b2b_org_fires_base_events_only(world: World) -> None:
    world.pixel()
    world.org("plain")
    world.widget_view("plain")
    world.call_started("plain", "call-2")
    world.wait_received(3)
    time.sleep(0.3)
    assert world.names() == ["GreetNow_CallStarted", "GreetNow_WidgetView", "Lead"]


def test_row9_meta_error_is_retried_and_shown_not_lost(world: World) -> None:
    world.pixel()
    world.org("acme")
    world.graph.enqueue_faults(Fault.server_error(500))
    world.widget_view("acme")
    deadline = time.monotonic() + 10
    while not world.delivery()["last_errors"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    report = world.delivery()
    assert "500" in str(report["last_errors"])
    # The retry goes out after its backoff (about 1-2 s on the first attempt).
    world.wait_received(1)
    assert world.graph.received_ids().most_common(1)[0][1] == 1


def test_row10_missing_access_token_cannot_be_enabled(world: World) -> None:
    answer = world.admin.put(
        PIXEL_API, json={"pixel_id": PIXEL_ID, "test_event_code": "", "enabled": True}
    )
    assert answer.status_code == 422
    assert "access_token" in answer.text
    assert world.admin.get(PIXEL_API).json()["state"] == "not_configured"


def test_row11_invalid_pixel_id_pauses_delivery_with_metas_message(world: World) -> None:
    world.org("acme")
    assert world.pixel(pixel_id="999999").status_code == 200
    world.widget_view("acme")
    deadline = time.monotonic() + 10
    while not world.delivery()["paused"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    paused = world.delivery()["paused"]
    assert isinstance(paused, dict)
    assert paused["code"] == 100
    # The event is kept; the right pixel ID resumes delivery.
    world.pixel()
    world.wait_received(1)
    assert not world.delivery()["paused"]


def test_row12_test_event_code_reaches_meta(world: World) -> None:
    world.org("acme")
    world.pixel(test_event_code="TEST12345")
    world.widget_view("acme")
    world.wait_received(1)
    assert world.graph.received[0].test_event_code == "TEST12345"
    answer = world.admin.post("/api/v1/platform/retargeting/test-event")
    assert answer.status_code == 200, answer.text
    assert answer.json()["ok"] is True
    assert answer.json()["events_received"] == 1


def test_row14_high_traffic_is_batched_not_serial(world: World) -> None:
    world.pixel()
    world.org("busy")
    now = int(time.time())
    events = [
        {
            "type": "widget_view",
            "organization_id": "busy",
            "visitor_id": f"v-{i}",
            "page_url": "https://busy.example/",
            "client_ip_address": "198.51.100.1",
            "client_user_agent": "Mozilla/5.0",
            "event_time": now,
        }
        for i in range(1000)
    ]
    for _ in range(3):
        answer = world.platform.post("/api/v1/events/batch", json={"events": events})
        assert answer.status_code == 202, answer.text
    world.wait_received(3000)
    assert len(world.graph.requests) <= 10  # batches of up to 1,000, not one request per event
    assert max(r.events for r in world.graph.requests) > 100


def test_row15_settings_change_in_another_process_is_obeyed_within_2_seconds(
    world: World,
) -> None:
    world.pixel()
    world.org("acme")
    assert world.widget_view("acme")["events_queued"] == 1
    changed_at = time.monotonic()
    pixel_settings.update_pixel(  # this test process is "another process" for the server
        world.engine,
        make_cipher(),
        actor="ops@example.com",
        update=pixel_settings.PixelUpdate(pixel_id=PIXEL_ID, enabled=False),
        now=time.time(),
    )
    while world.widget_view("acme", visitor=f"v-{time.monotonic()}")["events_queued"] != 0:
        assert time.monotonic() - changed_at < 2.0
        time.sleep(0.05)
    print(f"\nsettings obeyed by the server after {time.monotonic() - changed_at:.2f} s")


def test_row16_quick_succession_each_fires_with_stable_ids(world: World) -> None:
    world.pixel()
    world.org("acme")
    world.call_started("acme", "call-1")
    world.call_started("acme", "call-1")  # the platform retried the same call
    world.call_started("acme", "call-2")
    world.wait_received(6)
    ids = world.graph.received_ids()
    assert ids[("GreetNow_CallStarted", "gn_call_call-1")] == 2  # same id: Meta keeps one
    assert ids[("GreetNow_CallStarted", "gn_call_call-2")] == 1
