"""While the database cannot serve, callers get 503 + Retry-After, never a 500; then it heals."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from retargeting.runtime import Runtime
from tests.factories import make_org, make_pixel
from tests.integration.web.conftest import bearer
from tests.support import api_bodies
from tests.support.postgres import PostgresServer
from tests.support.testclient import TestClient

WIDGET_VIEW = "/api/v1/events/widget-view"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_database_refusing_connections_answers_503_then_recovers(
    client: TestClient,
    runtime: Runtime,
    ingest_key: str,
    superadmin_token: str,
    database_url: str,
    postgres_server: PostgresServer,
) -> None:
    make_org(runtime.engine, "org-1")
    make_pixel(runtime.engine)
    runtime.snapshot.refresh()
    assert (
        client.post(
            WIDGET_VIEW, json=api_bodies.widget_view(), headers=bearer(ingest_key)
        ).status_code
        == 202
    )
    name = make_url(database_url).database
    postgres_server.psql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
    postgres_server.psql(
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"  # noqa: S608 -- the fixture's own database name
    )
    try:
        for path, method, body, headers in (
            (WIDGET_VIEW, "POST", api_bodies.widget_view(visitor_id="v-2"), bearer(ingest_key)),
            ("/api/v1/platform/retargeting/pixel", "GET", None, bearer(superadmin_token)),
        ):
            answer = client.request(method, path, json=body, headers=headers)
            assert answer.status_code == 503, answer.text
            assert answer.headers["retry-after"] == "1"
            assert "database is unavailable" in answer.json()["detail"]
    finally:
        postgres_server.psql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
    again = client.post(
        WIDGET_VIEW, json=api_bodies.widget_view(visitor_id="v-3"), headers=bearer(ingest_key)
    )
    assert again.status_code == 202, again.text
