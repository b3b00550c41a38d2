"""The event endpoints' fast lane answers exactly as the whole middleware stack does.

A request with a declared Content-Length within the limit takes the lane; the same request sent
chunked (no Content-Length) goes down the whole stack. Every answer must be the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from retargeting.runtime import Runtime
from retargeting.web import fast_lane
from tests.factories import make_org
from tests.support import api_bodies
from tests.support.testclient import TestClient

WIDGET_VIEW = "/api/v1/events/widget-view"
CALL_STARTED = "/api/v1/events/call-started"
BATCH = "/api/v1/events/batch"
JSON = {"Content-Type": "application/json"}
# Set per answer by the server or by how the body was framed, not by the app.
FRAMING = {"content-length", "transfer-encoding", "date", "server"}

Case = tuple[str, dict[str, str], bytes]


def cases(key: str) -> dict[str, Case]:
    auth = {"Authorization": f"Bearer {key}", **JSON}
    view = api_bodies.widget_view()
    return {
        "accepted": (WIDGET_VIEW, auth, orjson.dumps(view)),
        "call accepted": (CALL_STARTED, auth, orjson.dumps(api_bodies.call_started())),
        "batch accepted": (BATCH, auth, orjson.dumps({"events": [api_bodies.batch_item()] * 3})),
        "no key": (WIDGET_VIEW, JSON, orjson.dumps(view)),
        "not a bearer": (WIDGET_VIEW, {**auth, "Authorization": f"Basic {key}"}, b"{}"),
        "empty bearer": (WIDGET_VIEW, {**auth, "Authorization": "Bearer "}, b"{}"),
        "wrong key": (WIDGET_VIEW, {**auth, "Authorization": "bearer rtk_nope"}, b"{}"),
        "invalid field": (WIDGET_VIEW, auth, orjson.dumps({**view, "page_url": "ftp://x"})),
        "unknown organization": (
            WIDGET_VIEW,
            auth,
            orjson.dumps({**view, "organization_id": "ghost"}),
        ),
        "not JSON": (WIDGET_VIEW, auth, b"{"),
        "not UTF-8": (WIDGET_VIEW, auth, b"\xff\xfe"),
        "no JSON content type": (WIDGET_VIEW, {**auth, "Content-Type": "text/plain"}, b"{}"),
        "empty": (WIDGET_VIEW, auth, b""),
        "batch item invalid": (BATCH, auth, orjson.dumps({"events": [{"type": "nope"}]})),
    }


def answer(client: TestClient, case: Case, *, chunked: bool) -> tuple[int, Any, dict[str, str]]:
    path, headers, body = case
    content: bytes | Iterator[bytes] = iter([body]) if chunked else body
    response = client.post(path, content=content, headers=headers)
    kept = {name: value for name, value in response.headers.items() if name not in FRAMING}
    return response.status_code, response.json(), kept


@pytest.fixture
def lane_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the requests the lane answered."""
    calls: list[str] = []
    original: Callable[..., Any] = fast_lane.with_security_headers

    def spy(headers: Any, path: str) -> Any:
        calls.append(path)
        return original(headers, path)

    monkeypatch.setattr(fast_lane, "with_security_headers", spy)
    return calls


@pytest.mark.parametrize("name", list(cases("key")))
def test_the_lane_answers_as_the_whole_stack_does(
    client: TestClient, ingest_key: str, runtime: Runtime, lane_calls: list[str], name: str
) -> None:
    make_org(runtime.engine, "org-1", retargeting_enabled=True)
    case = cases(ingest_key)[name]
    on_the_lane = answer(client, case, chunked=False)
    assert lane_calls == [case[0]]
    down_the_stack = answer(client, case, chunked=True)
    assert lane_calls == [case[0]]  # not taken without a declared length
    assert on_the_lane == down_the_stack
    assert on_the_lane[2]["x-frame-options"] == "DENY"


def test_other_methods_are_not_taken(client: TestClient, lane_calls: list[str]) -> None:
    assert client.get(WIDGET_VIEW).status_code == 405
    assert lane_calls == []


def test_a_bug_on_the_lane_is_a_generic_500_and_one_log_record(
    client: TestClient,
    ingest: dict[str, str],
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    make_org(runtime.engine, "org-1")

    async def broken(*_: object) -> None:
        raise RuntimeError("a bug holding secret-visitor-42")

    monkeypatch.setattr(runtime.committer, "record", broken)
    with caplog.at_level(logging.ERROR, logger="retargeting.web.middleware"):
        response = client.post(WIDGET_VIEW, json=api_bodies.widget_view(), headers=ingest)
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]  # not the settings poll
    assert getattr(record, "action", None) == "http_unhandled_error"
    assert getattr(record, "path", None) == WIDGET_VIEW
