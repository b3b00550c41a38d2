"""Health check, metrics, and the guarantee that a bug answers a generic 500 without details."""

from __future__ import annotations

import logging

import pytest
from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST

from retargeting.db.engine import make_engine
from retargeting.runtime import Runtime
from tests.support.testclient import TestClient


def test_healthz_is_ok_when_the_database_answers(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_healthz_is_503_when_the_database_does_not(
    client: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    unreachable = make_engine("postgresql+psycopg://nobody:secret-pw@127.0.0.1:1/none")
    monkeypatch.setattr(runtime, "engine", unreachable)
    try:
        response = client.get("/healthz")
    finally:
        unreachable.dispose()
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert "secret-pw" not in response.text


def test_metrics_are_prometheus_text(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    assert "retargeting_outbox_depth 0.0" in response.text


def test_a_bug_is_a_generic_500_that_logs_no_body(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    @app.post("/_bug")
    async def bug() -> None:
        raise RuntimeError("something broke")

    with TestClient(app) as client, caplog.at_level(logging.ERROR):
        response = client.post("/_bug", json={"client_ip_address": "203.0.113.99"})
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}
    assert "something broke" not in response.text
    assert "something broke" in caplog.text
    assert "203.0.113.99" not in caplog.text


def test_unknown_paths_are_json_404s(client: TestClient) -> None:
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}
