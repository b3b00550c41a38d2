"""Every superadmin route refuses every other kind of caller: 401 or 403, never the data."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import update

from retargeting.db.tables import access_tokens
from retargeting.runtime import Runtime
from retargeting.settings import Settings
from retargeting.web.app import create_app
from tests.factories import TEST_KEY
from tests.integration.web.conftest import bearer
from tests.support.testclient import TestClient

PLATFORM_PREFIX = "/api/v1/platform/"


def platform_routes() -> list[tuple[str, str]]:
    """(method, path) of every superadmin route, read from the app so none is forgotten."""
    app = create_app(Settings(database_url="sqlite://", secret_key=TEST_KEY, environment="test"))
    routes = [
        (method.upper(), path.replace("{org_id}", "org-1"))
        for path, operations in app.openapi()["paths"].items()
        if path.startswith(PLATFORM_PREFIX)
        for method in sorted(operations)
    ]
    assert len(routes) >= 7  # pixel x2, organizations x2, test-event, delivery, audit
    return routes


ROUTES = platform_routes()
route_ids = [f"{method} {path}" for method, path in ROUTES]


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=route_ids)
def test_no_token_is_a_401(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=route_ids)
def test_a_wrong_token_is_a_401(
    client: TestClient, superadmin_token: str, method: str, path: str
) -> None:
    for headers in (
        bearer("rtp_not-a-real-token"),
        bearer(superadmin_token + "x"),
        {"Authorization": f"Basic {superadmin_token}"},
        {"Authorization": superadmin_token},
    ):
        response = client.request(method, path, headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=route_ids)
def test_an_ingest_key_is_a_401(
    client: TestClient, ingest_key: str, method: str, path: str
) -> None:
    response = client.request(method, path, headers=bearer(ingest_key))
    assert response.status_code == 401


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=route_ids)
def test_a_user_who_is_not_a_superadmin_is_a_403(
    client: TestClient, user_token: str, method: str, path: str
) -> None:
    response = client.request(method, path, headers=bearer(user_token))
    assert response.status_code == 403


@pytest.mark.parametrize("column", ["expires_at", "revoked_at"])
def test_expired_and_revoked_tokens_are_a_401(
    client: TestClient, runtime: Runtime, superadmin_token: str, column: str
) -> None:
    path = "/api/v1/platform/retargeting/pixel"
    assert client.get(path, headers=bearer(superadmin_token)).status_code == 200
    with runtime.engine.begin() as conn:
        conn.execute(update(access_tokens).values({column: time.time() - 1}))
    assert client.get(path, headers=bearer(superadmin_token)).status_code == 401


def test_openapi_documents_both_bearer_schemes(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert set(spec["components"]["securitySchemes"]) == {"IngestApiKey", "PersonalAccessToken"}
    assert "/api/v1/events/batch" in spec["paths"]
    assert "/api/v1/platform/retargeting/delivery" in spec["paths"]
