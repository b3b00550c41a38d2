"""Sending a test event now, against a real HTTP server that checks requests by Meta's rules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from retargeting.runtime import Runtime
from retargeting.settings import Settings
from tests.factories import ACCESS_TOKEN, PIXEL_ID, make_pixel
from tests.fakes.graph_stand_in import GraphStandIn
from tests.integration.web.conftest import web_settings
from tests.support.testclient import TestClient

TEST_EVENT = "/api/v1/platform/retargeting/test-event"
AUDIT = "/api/v1/platform/retargeting/audit"

Headers = dict[str, str]


@pytest.fixture
def graph() -> Iterator[GraphStandIn]:
    with GraphStandIn(valid_tokens={ACCESS_TOKEN}, known_pixels={PIXEL_ID}) as stand_in:
        yield stand_in


@pytest.fixture
def settings(database_url: str, tmp_path: Path, graph: GraphStandIn) -> Settings:
    return web_settings(database_url, tmp_path, graph_api_url=graph.url)


@pytest.mark.parametrize("pixel", [None, {"access_token": ""}, {"pixel_id": ""}])
def test_an_unconfigured_pixel_is_a_409(
    client: TestClient, admin: Headers, runtime: Runtime, pixel: dict[str, Any] | None
) -> None:
    if pixel is not None:
        make_pixel(runtime.engine, enabled=False, test_event_code="TEST1", **pixel)
    response = client.post(TEST_EVENT, json={"test_event_code": "TEST1"}, headers=admin)
    assert response.status_code == 409
    assert "not configured" in response.json()["detail"]


def test_no_test_event_code_is_a_409(
    client: TestClient, admin: Headers, runtime: Runtime, graph: GraphStandIn
) -> None:
    make_pixel(runtime.engine)
    response = client.post(TEST_EVENT, headers=admin)
    assert response.status_code == 409
    assert "test event code" in response.json()["detail"]
    assert graph.requests == []  # nothing that could count as a real visit was sent


def test_a_bad_override_is_a_422(client: TestClient, admin: Headers, runtime: Runtime) -> None:
    make_pixel(runtime.engine, test_event_code="TEST1")
    response = client.post(TEST_EVENT, json={"test_event_code": "no spaces"}, headers=admin)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "test_event_code"]


@pytest.mark.parametrize("enabled", [True, False])
def test_meta_accepts_the_test_event(
    client: TestClient, admin: Headers, runtime: Runtime, graph: GraphStandIn, enabled: bool
) -> None:
    make_pixel(runtime.engine, test_event_code="TEST4242", enabled=enabled)
    response = client.post(TEST_EVENT, headers=admin)
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    assert body["events_received"] == 1
    assert body["fbtrace_id"]
    assert body["test_event_code"] == "TEST4242"
    [received] = graph.received
    assert received.pixel_id == PIXEL_ID
    assert received.test_event_code == "TEST4242"
    assert received.event["event_name"] == "GreetNow_WidgetView"
    assert received.event["event_id"] == body["event_id"]
    assert graph.violations == []
    assert ACCESS_TOKEN not in response.text


def test_the_override_code_is_used(
    client: TestClient, admin: Headers, runtime: Runtime, graph: GraphStandIn
) -> None:
    make_pixel(runtime.engine, test_event_code="STORED1")
    response = client.post(TEST_EVENT, json={"test_event_code": "OVERRIDE2"}, headers=admin)
    assert response.json()["ok"] is True
    assert [r.test_event_code for r in graph.received] == ["OVERRIDE2"]


def test_metas_refusal_reaches_the_admin(
    client: TestClient, admin: Headers, runtime: Runtime, graph: GraphStandIn
) -> None:
    make_pixel(runtime.engine, access_token="EAAwrongtoken0123456789abcdef", test_event_code="T1")
    response = client.post(TEST_EVENT, headers=admin)
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is False
    error = body["error"]
    assert error["code"] == 190
    assert error["message"]
    assert error["fbtrace_id"]
    assert "EAAwrongtoken" not in response.text
    entry = client.get(AUDIT, headers=admin).json()["items"][0]
    assert entry["action"] == "pixel.test_event"
    assert entry["new_value"]["ok"] is False
    assert entry["new_value"]["test_event_code"] == "T1"


def test_a_sent_test_is_audited(
    client: TestClient, admin: Headers, runtime: Runtime, graph: GraphStandIn
) -> None:
    make_pixel(runtime.engine, test_event_code="TEST1")
    sent = client.post(TEST_EVENT, headers=admin).json()
    [entry] = client.get(AUDIT, headers=admin).json()["items"]
    assert (entry["action"], entry["actor"]) == ("pixel.test_event", "admin@greetnow.example")
    assert entry["new_value"]["event_id"] == sent["event_id"]
    assert entry["new_value"]["ok"] is True


def test_an_unreachable_graph_api_is_reported_not_raised(
    client: TestClient, admin: Headers, runtime: Runtime, graph: GraphStandIn
) -> None:
    make_pixel(runtime.engine, test_event_code="T1")
    graph.stop()
    response = client.post(TEST_EVENT, headers=admin)
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is False
    assert body["error"]["code"] is None
    assert body["error"]["message"]
