"""Schemathesis over the app's own OpenAPI document: every operation, positive and negative data.

Each operation is a pytest item per engine; per example the response must not be a 5xx and must
conform to the document: a documented status code, the documented content type and, for JSON, the
documented response schema.

Why not `schemathesis.openapi.from_asgi` plus `case.call_and_validate()`: schemathesis's ASGI
client starts the app's lifespan on its own event loop and keeps it running until the process
exits. Here that would build a second `Runtime` for the per-test app (replacing
`app.state.runtime`, with a settings poll that outlives the per-test database). Instead the
document comes from the app itself (`create_app` touches no database until it starts; a test
checks that `/openapi.json` serves exactly this document), the requests go through the `client`
fixture, whose lifespan is the app's only one, and schemathesis validates the responses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from retargeting.runtime import Runtime
from retargeting.web.app import create_app
from tests.factories import make_org, make_pixel
from tests.integration.web.conftest import web_settings
from tests.support import api_bodies
from tests.support.testclient import TestClient

Headers = dict[str, str]


def _document() -> dict[str, Any]:
    # Never started, so never connects: only the routes matter for the document.
    unused = Path("/nonexistent")
    return create_app(web_settings(f"sqlite:///{unused}/db", unused), deliver=False).openapi()


DOCUMENT = _document()

schema = schemathesis.openapi.from_dict(DOCUMENT)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
BOUNDED = settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def send(client: TestClient, case: Any, headers: Headers) -> Any:
    """Send a schemathesis case through the fixture's client (httpx), without httpx's warnings."""
    kwargs = case.as_transport_kwargs(base_url=str(client.base_url), headers=headers)
    request: dict[str, Any] = {
        "method": kwargs["method"],
        "url": kwargs["url"],
        "headers": kwargs["headers"],
        "params": kwargs.get("params"),
    }
    if "json" in kwargs:
        request["json"] = kwargs["json"]
    elif kwargs.get("data") is not None:
        request["content"] = kwargs["data"]  # httpx deprecates raw bytes as data=
    assert not kwargs.get("cookies"), "no operation here takes cookies"
    return client.request(**request)


def credentials_for(case: Any, request: pytest.FixtureRequest) -> Headers:
    """The ingest key on ingest routes, a superadmin's token on platform routes, else nothing."""
    tags = case.operation.definition.raw.get("tags", [])
    if "ingest" in tags:
        headers: Headers = request.getfixturevalue("ingest")
        return headers
    if "platform" in tags:
        headers = request.getfixturevalue("admin")  # hashes a password: only where needed
        return headers
    return {}


def test_the_served_document_is_the_one_under_test(client: TestClient) -> None:
    assert client.get("/openapi.json").json() == DOCUMENT


def test_malformed_bodies_are_documented() -> None:
    """A body json cannot decode (not UTF-8, nested too deeply) is a 400 before validation."""
    for operations in DOCUMENT["paths"].values():
        for operation in operations.values():
            if "requestBody" in operation:
                assert "400" in operation["responses"]


@pytest.fixture
def org_1(runtime: Runtime) -> str:
    """An organization to find; set up once per operation and engine, not once per example."""
    return make_org(runtime.engine, "org-1")


@schema.parametrize()
@BOUNDED
def test_every_operation_conforms(
    case: Any, client: TestClient, org_1: str, request: pytest.FixtureRequest
) -> None:
    response = send(client, case, credentials_for(case, request))
    case.validate_response(response, checks=CHECKS)


HAPPY_PATHS: list[tuple[str, str, dict[str, Any] | None, int]] = [
    ("PUT", "/api/v1/organizations/{org_id}", api_bodies.organization(), 200),
    ("POST", "/api/v1/events/widget-view", api_bodies.widget_view(), 202),
    ("POST", "/api/v1/events/call-started", api_bodies.call_started(), 202),
    ("POST", "/api/v1/events/batch", {"events": [api_bodies.batch_item()]}, 202),
    ("GET", "/api/v1/platform/retargeting/pixel", None, 200),
    ("GET", "/api/v1/platform/retargeting/organizations", None, 200),
    (
        "PUT",
        "/api/v1/platform/retargeting/organizations/{org_id}",
        {"retargeting_enabled": True},
        200,
    ),
    ("POST", "/api/v1/platform/retargeting/test-event", {"test_event_code": "TEST123"}, 200),
    ("GET", "/api/v1/platform/retargeting/delivery", None, 200),
    ("GET", "/api/v1/platform/retargeting/audit", None, 200),
]


def test_success_responses_conform(
    client: TestClient, runtime: Runtime, request: pytest.FixtureRequest
) -> None:
    """Random data rarely passes validation, so each operation's 2xx is checked once explicitly."""
    make_org(runtime.engine, "org-1")
    make_pixel(runtime.engine)
    runtime.snapshot.refresh()
    for method, path, body, expected in HAPPY_PATHS:
        operation = schema[path][method]
        path_parameters = {"org_id": "org-1"} if "{org_id}" in path else None
        if body is None:
            case = operation.Case(path_parameters=path_parameters)
        else:
            case = operation.Case(path_parameters=path_parameters, body=body)
        response = send(client, case, credentials_for(case, request))
        assert response.status_code == expected, (method, path, response.text)
        case.validate_response(response, checks=CHECKS)
