"""The admin's organization list and the per-organization retargeting toggle."""

from __future__ import annotations

from typing import Any

import pytest

from retargeting.db import orgs
from retargeting.runtime import Runtime
from tests.factories import make_org, make_pixel
from tests.support.testclient import TestClient

ORGS = "/api/v1/platform/retargeting/organizations"
AUDIT = "/api/v1/platform/retargeting/audit"

Headers = dict[str, str]


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


@pytest.fixture
def three_orgs(runtime: Runtime) -> None:
    make_org(runtime.engine, "org-a", name="Acme Dental", status="active")
    make_org(
        runtime.engine, "org-b", name="Bright Smiles", status="trial", retargeting_enabled=True
    )
    make_org(runtime.engine, "org-c", name="Cedar Law 100%", status="churned")


@pytest.mark.usefixtures("three_orgs")
def test_the_list_has_counts_and_totals(client: TestClient, admin: Headers) -> None:
    body = client.get(ORGS, headers=admin).json()
    assert [item["id"] for item in body["items"]] == ["org-a", "org-b", "org-c"]
    assert body["items"][1] == {
        "id": "org-b",
        "name": "Bright Smiles",
        "status": "trial",
        "retargeting_enabled": True,
        "pageview_count": 0,
        "call_count": 0,
    }
    assert (body["total"], body["page"], body["page_size"]) == (3, 1, 50)
    assert (body["enabled_count"], body["organization_count"]) == (1, 3)


@pytest.mark.usefixtures("three_orgs")
def test_search_is_case_insensitive_and_literal(client: TestClient, admin: Headers) -> None:
    assert ids(client.get(ORGS, params={"search": "SMILE"}, headers=admin)) == ["org-b"]
    assert ids(client.get(ORGS, params={"search": "100%"}, headers=admin)) == ["org-c"]
    assert ids(client.get(ORGS, params={"search": "_"}, headers=admin)) == []
    empty = client.get(ORGS, params={"search": "nobody"}, headers=admin).json()
    assert (empty["items"], empty["total"], empty["organization_count"]) == ([], 0, 3)


@pytest.mark.usefixtures("three_orgs")
def test_enabled_only(client: TestClient, admin: Headers) -> None:
    response = client.get(ORGS, params={"enabled_only": "true"}, headers=admin)
    assert ids(response) == ["org-b"]
    assert response.json()["total"] == 1


@pytest.mark.usefixtures("three_orgs")
@pytest.mark.parametrize(
    ("sort", "order", "expected"),
    [
        ("name", "desc", ["org-c", "org-b", "org-a"]),
        ("status", "asc", ["org-a", "org-c", "org-b"]),
        ("retargeting", "desc", ["org-b", "org-a", "org-c"]),
    ],
)
def test_sorting(
    client: TestClient, admin: Headers, sort: str, order: str, expected: list[str]
) -> None:
    assert ids(client.get(ORGS, params={"sort": sort, "order": order}, headers=admin)) == expected


def test_sorting_by_counts(client: TestClient, admin: Headers, runtime: Runtime) -> None:
    for org_id, (pageviews, calls) in {"o1": (5, 0), "o2": (1, 9), "o3": (3, 3)}.items():
        make_org(runtime.engine, org_id)
        with runtime.engine.begin() as conn:
            orgs.add_counts_returning_flags(conn, {org_id: (pageviews, calls)})
    pageviews = client.get(ORGS, params={"sort": "pageviews", "order": "desc"}, headers=admin)
    assert ids(pageviews) == ["o1", "o3", "o2"]
    calls = client.get(ORGS, params={"sort": "calls"}, headers=admin)
    assert ids(calls) == ["o1", "o3", "o2"]


def test_pagination(client: TestClient, admin: Headers, runtime: Runtime) -> None:
    for n in range(7):
        make_org(runtime.engine, f"org-{n}", name=f"Org {n}")
    pages = [
        client.get(ORGS, params={"page": page, "page_size": 3}, headers=admin).json()
        for page in (1, 2, 3, 4)
    ]
    assert [[i["id"] for i in p["items"]] for p in pages] == [
        ["org-0", "org-1", "org-2"],
        ["org-3", "org-4", "org-5"],
        ["org-6"],
        [],
    ]
    assert {p["total"] for p in pages} == {7}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page": 0}, "page"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": 201}, "page_size"),
        ({"sort": "created"}, "sort"),
        ({"order": "up"}, "order"),
        ({"enabled_only": "maybe"}, "enabled_only"),
        ({"search": "x" * 301}, "search"),
        ({"search": "a\x00b"}, "search"),
    ],
)
def test_bad_list_parameters_are_a_422(
    client: TestClient, admin: Headers, params: dict[str, Any], field: str
) -> None:
    response = client.get(ORGS, params=params, headers=admin)
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["query", field]]


@pytest.mark.parametrize("pixel", [None, {"enabled": False}])
def test_switching_on_needs_an_active_pixel(
    client: TestClient, admin: Headers, runtime: Runtime, pixel: dict[str, Any] | None
) -> None:
    make_org(runtime.engine, "org-1")
    if pixel is not None:
        make_pixel(runtime.engine, **pixel)
    response = client.put(f"{ORGS}/org-1", json={"retargeting_enabled": True}, headers=admin)
    assert response.status_code == 409
    expected = "not configured" if pixel is None else "disabled"
    assert expected in response.json()["detail"]
    assert client.get(ORGS, headers=admin).json()["enabled_count"] == 0


def test_switching_on_and_off_with_an_active_pixel(
    client: TestClient, admin: Headers, runtime: Runtime
) -> None:
    make_org(runtime.engine, "org-1", name="Acme")
    make_pixel(runtime.engine)
    on = client.put(f"{ORGS}/org-1", json={"retargeting_enabled": True}, headers=admin)
    assert on.status_code == 200
    assert on.json()["retargeting_enabled"] is True
    off = client.put(f"{ORGS}/org-1", json={"retargeting_enabled": False}, headers=admin)
    assert off.json()["retargeting_enabled"] is False
    entries = client.get(AUDIT, headers=admin).json()["items"]
    assert [(e["action"], e["target"], e["new_value"]["retargeting_enabled"]) for e in entries] == [
        ("organization.retargeting", "organization:org-1", False),
        ("organization.retargeting", "organization:org-1", True),
    ]
    assert entries[0]["actor"] == "admin@greetnow.example"


def test_switching_off_is_always_allowed(
    client: TestClient, admin: Headers, runtime: Runtime
) -> None:
    make_org(runtime.engine, "org-1", retargeting_enabled=True)  # pixel never configured
    response = client.put(f"{ORGS}/org-1", json={"retargeting_enabled": False}, headers=admin)
    assert response.status_code == 200
    assert response.json()["retargeting_enabled"] is False


def test_toggling_an_unknown_organization_is_a_404(client: TestClient, admin: Headers) -> None:
    response = client.put(f"{ORGS}/ghost", json={"retargeting_enabled": False}, headers=admin)
    assert response.status_code == 404
    assert response.json()["detail"] == "unknown organization: ghost"


@pytest.mark.parametrize("body", [{}, {"retargeting_enabled": "true"}, {"retargeting_enabled": 1}])
def test_the_toggle_needs_a_boolean(client: TestClient, admin: Headers, body: Any) -> None:
    response = client.put(f"{ORGS}/org-1", json=body, headers=admin)
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "retargeting_enabled"]]


def test_search_ignores_case_beyond_ascii(
    client: TestClient, admin: Headers, runtime: Runtime
) -> None:
    make_org(runtime.engine, "se-1", name="Örebro Tandvård")
    make_org(runtime.engine, "de-1", name="Straße & Söhne")
    for term, expected in [("örebro", ["se-1"]), ("ÖREBRO", ["se-1"]), ("STRASSE", ["de-1"])]:
        answer = client.get(
            "/api/v1/platform/retargeting/organizations", params={"search": term}, headers=admin
        )
        assert [item["id"] for item in answer.json()["items"]] == expected, term
