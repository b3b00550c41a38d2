"""Hostile input over HTTP: a 4xx naming the field (never a 5xx), and nothing written.

Complements test_web_ingest.py (junk bodies, 413s, per-field rules) and test_web_fuzz.py (random
JSON): here are the inputs a fuzzer rarely produces. Every refused request must leave the
database as it was: organizations, counters, interactions, outbox and audit log.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select

from retargeting.db.tables import (
    audit_log,
    call_logs,
    organizations,
    outbox_events,
    widget_pageviews,
)
from retargeting.runtime import Runtime
from tests.factories import make_org, make_pixel
from tests.support import api_bodies
from tests.support.testclient import TestClient

Headers = dict[str, str]

WIDGET_VIEW = "/api/v1/events/widget-view"
CALL_STARTED = "/api/v1/events/call-started"
BATCH = "/api/v1/events/batch"
INGEST_ORG = "/api/v1/organizations/org-1"
ADMIN = "/api/v1/platform/retargeting"
ADMIN_ORGS = f"{ADMIN}/organizations"
EVENT_PATHS = [WIDGET_VIEW, CALL_STARTED, BATCH]
MB = 1_000_000


def database_state(runtime: Runtime) -> dict[str, Any]:
    """Everything a refused request must not change."""
    with runtime.engine.connect() as conn:
        rows = conn.execute(
            select(
                organizations.c.id,
                organizations.c.name,
                organizations.c.status,
                organizations.c.greetnow_retargeting_enabled,
                organizations.c.pageview_count,
                organizations.c.call_count,
            ).order_by(organizations.c.id)
        ).all()
        counts = {
            table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (widget_pageviews, call_logs, outbox_events, audit_log)
        }
    return {"organizations": [tuple(row) for row in rows], **counts}


@pytest.fixture
def live(runtime: Runtime) -> Runtime:
    """org-1 with retargeting on and an active pixel: a valid event would queue outbox rows."""
    make_org(runtime.engine, "org-1", retargeting_enabled=True)
    make_pixel(runtime.engine)
    runtime.snapshot.refresh()
    return runtime


def as_json(body: Any) -> bytes:
    """ASCII JSON, so lone surrogates travel as `\\ud800` escapes rather than failing to encode."""
    return json.dumps(body).encode("ascii")


def post_raw(client: TestClient, path: str, content: bytes, headers: Headers, method: str = "POST"):
    return client.request(
        method, path, content=content, headers={**headers, "Content-Type": "application/json"}
    )


def event_body(path: str, **overrides: Any) -> dict[str, Any]:
    if path == WIDGET_VIEW:
        return api_bodies.widget_view(**overrides)
    if path == CALL_STARTED:
        return api_bodies.call_started(**overrides)
    return {"events": [api_bodies.batch_item(**overrides)]}


def field_loc(path: str, field: str) -> list[Any]:
    return ["body", "events", 0, "widget_view", field] if path == BATCH else ["body", field]


def locs(response: Any) -> list[list[Any]]:
    assert response.status_code == 422, response.text
    return [error["loc"] for error in response.json()["detail"]]


# --- Deep nesting ---------------------------------------------------------------------------

DEPTH = 100_000


def nested_arrays(depth: int = DEPTH) -> bytes:
    return b"[" * depth + b"]" * depth


def nested_objects(depth: int = DEPTH) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


@pytest.mark.parametrize(
    ("content", "status"),
    [
        # Past the interpreter's recursion limit, json.loads raises RecursionError, which
        # FastAPI turns into its 400 "There was an error parsing the body".
        (nested_arrays(), 400),
        (nested_objects(), 400),
        (b'{"organization_id": ' + nested_arrays() + b"}", 400),
        (b'{"events": [' + nested_arrays() + b"]}", 400),
        # Shallow enough to parse: then pydantic refuses it, naming the field.
        (b'{"organization_id": ' + nested_arrays(500) + b"}", 422),
        (b'{"events": [' + nested_objects(500) + b"]}", 422),
    ],
    ids=["arrays", "objects", "in-a-field", "in-a-batch", "parsable-field", "parsable-batch"],
)
def test_deep_nesting_is_a_client_error(
    client: TestClient,
    ingest: Headers,
    live: Runtime,
    caplog: pytest.LogCaptureFixture,
    content: bytes,
    status: int,
) -> None:
    before = database_state(live)
    for path in EVENT_PATHS:
        response = post_raw(client, path, content, ingest)
        assert response.status_code == status, (path, response.text)
        assert "detail" in response.json()
    assert database_state(live) == before
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no unhandled error


def test_deep_nesting_on_the_other_routes(
    client: TestClient,
    admin: Headers,
    live: Runtime,
    ingest: Headers,
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = database_state(live)
    for method, path, headers in [
        ("PUT", INGEST_ORG, ingest),
        ("PUT", f"{ADMIN}/pixel", admin),
        ("PUT", f"{ADMIN_ORGS}/org-1", admin),
        ("POST", f"{ADMIN}/test-event", admin),
    ]:
        for content in (nested_arrays(), nested_objects()):
            response = post_raw(client, path, content, headers, method=method)
            assert response.status_code == 400, (path, response.text)
    assert database_state(live) == before
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# --- Invalid UTF-8 and lone surrogates ------------------------------------------------------

BODY_ROUTES = [
    ("POST", WIDGET_VIEW, "ingest"),
    ("POST", CALL_STARTED, "ingest"),
    ("POST", BATCH, "ingest"),
    ("PUT", INGEST_ORG, "ingest"),
    ("PUT", f"{ADMIN}/pixel", "admin"),
    ("PUT", f"{ADMIN_ORGS}/org-1", "admin"),
    ("POST", f"{ADMIN}/test-event", "admin"),
]


@pytest.mark.parametrize(
    ("content", "status"),
    [
        (b'{"visitor_id": "\xff\xfe"}', 400),  # bytes that never occur in UTF-8
        (b'{"visitor_id": "\xc3"}', 400),  # a truncated sequence
        (b'{"visitor_id": "\xc0\xaf"}', 400),  # an overlong "/"
        # An encoded surrogate (CESU-8): json.loads decodes bytes with "surrogatepass", so this
        # parses into a lone surrogate, which pydantic then refuses as a string.
        (b'{"visitor_id": "\xed\xa0\x80"}', 422),
    ],
    ids=["ff-fe", "truncated", "overlong", "cesu8"],
)
def test_invalid_utf8_is_a_client_error(
    client: TestClient, live: Runtime, request: pytest.FixtureRequest, content: bytes, status: int
) -> None:
    before = database_state(live)
    for method, path, auth in BODY_ROUTES:
        response = post_raw(client, path, content, request.getfixturevalue(auth), method=method)
        # 400 is FastAPI's "There was an error parsing the body", undocumented in the OpenAPI.
        assert response.status_code == status, (path, response.text)
        assert "detail" in response.json()
    assert database_state(live) == before


def test_invalid_utf8_in_the_query_and_path(
    client: TestClient, admin: Headers, live: Runtime
) -> None:
    before = database_state(live)
    assert client.get(f"{ADMIN_ORGS}?search=%FF%FE", headers=admin).status_code in (200, 422)
    toggle = client.put(f"{ADMIN_ORGS}/org%FF", json={"retargeting_enabled": False}, headers=admin)
    assert locs(toggle) == [["path", "org_id"]]
    assert database_state(live) == before


LONE_SURROGATE = "\ud800"


@pytest.mark.parametrize(
    "field",
    [
        "visitor_id",
        "page_url",
        "client_user_agent",
        "client_ip_address",
        "fbp",
        "fbc",
        "event_id",
        "organization_id",
    ],
)
def test_a_lone_surrogate_is_a_422_naming_the_field(
    client: TestClient, ingest: Headers, live: Runtime, field: str
) -> None:
    """`"\\ud800"` is valid JSON but no UTF-8 string: it must not reach hashing or the database."""
    before = database_state(live)
    for path in EVENT_PATHS:
        body = event_body(path, **{field: f"v{LONE_SURROGATE}1"})
        response = post_raw(client, path, as_json(body), ingest)
        assert locs(response) == [field_loc(path, field)], path
    assert database_state(live) == before


@pytest.mark.parametrize(
    ("method", "path", "auth", "body", "field"),
    [
        ("PUT", INGEST_ORG, "ingest", {"name": LONE_SURROGATE, "status": "active"}, "name"),
        ("PUT", INGEST_ORG, "ingest", {"name": "Acme", "status": LONE_SURROGATE}, "status"),
        (
            "PUT",
            f"{ADMIN}/pixel",
            "admin",
            {
                "pixel_id": "1",
                "access_token": f"EAA{LONE_SURROGATE}",
                "test_event_code": "",
                "enabled": False,
            },
            "access_token",
        ),
        (
            "PUT",
            f"{ADMIN}/pixel",
            "admin",
            {"pixel_id": "1", "test_event_code": LONE_SURROGATE, "enabled": False},
            "test_event_code",
        ),
        (
            "POST",
            f"{ADMIN}/test-event",
            "admin",
            {"test_event_code": LONE_SURROGATE},
            "test_event_code",
        ),
    ],
)
def test_a_lone_surrogate_elsewhere_is_a_422(
    client: TestClient,
    live: Runtime,
    request: pytest.FixtureRequest,
    method: str,
    path: str,
    auth: str,
    body: dict[str, Any],
    field: str,
) -> None:
    before = database_state(live)
    response = post_raw(client, path, as_json(body), request.getfixturevalue(auth), method=method)
    assert locs(response) == [["body", field]]
    assert database_state(live) == before


# --- Huge strings ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", [MB, 3 * MB])
@pytest.mark.parametrize("field", ["visitor_id", "client_user_agent", "page_url", "fbc"])
def test_a_huge_string_is_a_413_or_a_422(
    client: TestClient, ingest: Headers, live: Runtime, field: str, size: int
) -> None:
    before = database_state(live)
    value = "https://a.example/" + "x" * size if field == "page_url" else "x" * size
    response = client.post(
        WIDGET_VIEW, json=api_bodies.widget_view(**{field: value}), headers=ingest
    )
    if size > 2 * MB:
        assert response.status_code == 413
    else:
        assert locs(response) == [["body", field]]
    assert "x" * 100 not in response.text  # the input is never echoed back
    assert database_state(live) == before


@pytest.mark.parametrize("size", [MB, 3 * MB])
def test_a_huge_organization_name_is_a_413_or_a_422(
    client: TestClient, ingest: Headers, live: Runtime, size: int
) -> None:
    before = database_state(live)
    body = api_bodies.organization(name="N" * size)
    response = client.put(INGEST_ORG, json=body, headers=ingest)
    if size > 2 * MB:
        assert response.status_code == 413
    else:
        assert locs(response) == [["body", "name"]]
    assert database_state(live) == before


def test_a_huge_search_is_a_422(client: TestClient, admin: Headers, live: Runtime) -> None:
    response = client.get(ADMIN_ORGS, params={"search": "s" * 60_000}, headers=admin)
    assert locs(response) == [["query", "search"]]


# --- SQL injection and HTML in names --------------------------------------------------------

HOSTILE_NAMES = [
    "'; DROP TABLE organizations; --",
    "Robert'); DROP TABLE outbox_events;--",
    '" OR 1=1 --',
    "<img src=x onerror=alert(1)>",
    "<script>alert('x')</script>&amp;",
    "ünïcødé 🦷 — O'Brien & Sons",
]


def test_hostile_names_are_stored_and_returned_verbatim(
    client: TestClient,
    ingest: Headers,
    admin: Headers,
    runtime: Runtime,
    subtests: pytest.Subtests,
) -> None:
    make_org(runtime.engine, "org-0", name="Bystander")
    for number, name in enumerate(HOSTILE_NAMES, start=1):
        with subtests.test(name=name):
            org_id = f"org-{number}"
            response = client.put(
                f"/api/v1/organizations/{org_id}",
                json=api_bodies.organization(name=name),
                headers=ingest,
            )
            assert response.status_code == 201, response.text
            assert response.headers["content-type"] == "application/json"
            assert response.json()["name"] == name
            listing = client.get(ADMIN_ORGS, params={"search": name}, headers=admin)
            assert listing.status_code == 200, listing.text
            assert [(item["id"], item["name"]) for item in listing.json()["items"]] == [
                (org_id, name)
            ]
            with runtime.engine.connect() as conn:
                stored = conn.execute(
                    select(organizations.c.name).where(organizations.c.id == org_id)
                ).scalar_one()
            assert stored == name
    everything = client.get(ADMIN_ORGS, headers=admin).json()
    assert everything["organization_count"] == len(HOSTILE_NAMES) + 1  # tables intact
    assert database_state(runtime)["outbox_events"] == 0  # that table still answers too


# --- LIKE wildcards in the admin search ------------------------------------------------------

WILDCARD_ORGS = [
    ("o-pct", "50% Off Dental"),
    ("o-und", "snake_case clinic"),
    ("o-bsl", "Back\\Slash Law"),
    ("o-plain", "Plain Practice"),
    ("o-esc", "Escape \\% Co"),
]
SEARCHES = [
    ("%", ["o-esc", "o-pct"]),
    ("_", ["o-und"]),
    ("\\", ["o-bsl", "o-esc"]),
    ("\\%", ["o-esc"]),
    ("\\\\", []),
    ("%%", []),
    ("p_ain", []),  # as a wildcard "_" would match the "l" of "Plain"
    ("0%", ["o-pct"]),
    ("[a-z]", []),
    ("*", []),
]


def test_search_wildcards_match_literally(
    client: TestClient, admin: Headers, runtime: Runtime, subtests: pytest.Subtests
) -> None:
    for org_id, name in WILDCARD_ORGS:
        make_org(runtime.engine, org_id, name=name)
    for search, expected in SEARCHES:
        with subtests.test(search=search):
            response = client.get(ADMIN_ORGS, params={"search": search}, headers=admin)
            assert response.status_code == 200, response.text
            assert sorted(item["id"] for item in response.json()["items"]) == expected
            assert response.json()["total"] == len(expected)


# --- IP addresses ---------------------------------------------------------------------------

GOOD_IPS = [
    ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),  # full
    ("2001:DB8::1", "2001:db8::1"),  # compressed, upper case
    ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
    ("::1", "::1"),
    ("::", "::"),
    ("::ffff:198.51.100.4", "198.51.100.4"),  # IPv4-mapped
    ("::FFFF:C633:6404", "198.51.100.4"),  # IPv4-mapped, in hex
    ("fe80::1", "fe80::1"),
    ("203.0.113.7", "203.0.113.7"),
]


def latest_ips(runtime: Runtime, count: int) -> set[str]:
    with runtime.engine.connect() as conn:
        payloads = conn.execute(
            select(outbox_events.c.payload).order_by(outbox_events.c.id.desc()).limit(count)
        ).scalars()
        return {orjson.loads(payload)["user_data"]["client_ip_address"] for payload in payloads}


def test_ip_addresses_are_accepted_and_normalised(
    client: TestClient, ingest: Headers, live: Runtime, subtests: pytest.Subtests
) -> None:
    for given, stored in GOOD_IPS:
        with subtests.test(address=given):
            body = api_bodies.widget_view(client_ip_address=given)
            response = client.post(WIDGET_VIEW, json=body, headers=ingest)
            assert response.status_code == 202, response.text
            assert response.json()["events_queued"] == 2
            assert latest_ips(live, 2) == {stored}


BAD_IPS = [
    "1.2.3",
    "::g",
    "999.1.1.1",
    "fe80::1%eth0",
    "fe80::1%25eth0",
    "1.2.3.4.5",
    "01.2.3.4",  # leading zeros: octal or decimal? ipaddress refuses to guess
    "1.2.3.4 ",
    "1.2.3.4\n",
    "::1.2.3.4%1",
    "[::1]",
    "2001:db8::1::1",
    "12345::",
    "::ffff:999.1.1.1",
    "1.2.3.4:80",
    "0x7f.0.0.1",
    "",
    "x" * 10_000,
]


def test_malformed_ips_are_a_422_naming_the_field(
    client: TestClient, ingest: Headers, live: Runtime, subtests: pytest.Subtests
) -> None:
    for address in BAD_IPS:
        with subtests.test(address=address[:40]):
            before = database_state(live)
            for path in EVENT_PATHS:
                body = event_body(path, client_ip_address=address)
                response = client.post(path, json=body, headers=ingest)
                assert locs(response) == [field_loc(path, "client_ip_address")], path
            assert database_state(live) == before


# --- fbc / fbp ------------------------------------------------------------------------------

BAD_COOKIES = [
    "fb.1.x.y",
    "fb..1.abc",
    "",
    "fb.1.1554763741205." + "a" * 10_000,  # 10 KB
    "fb.1.1554763741205.abc\n",
    "fb.1.1554763741205.abc def",
    "fb.1.1554763741205.<script>",
    " fb.1.1554763741205.123",
    "FB.1.1554763741205.123",
    "fb.1.1554763741205.123.",
    "fb.1.1554763741205.123.a.b",
    "fb.\uff11.1554763741205.123",  # a full-width digit one
]


@pytest.mark.parametrize("field", ["fbp", "fbc"])
def test_malformed_cookies_are_a_422_naming_the_field(
    client: TestClient, ingest: Headers, live: Runtime, subtests: pytest.Subtests, field: str
) -> None:
    for value in BAD_COOKIES:
        with subtests.test(value=value[:40]):
            before = database_state(live)
            for path in EVENT_PATHS:
                response = client.post(
                    path, json=event_body(path, **{field: value}), headers=ingest
                )
                assert locs(response) == [field_loc(path, field)], path
                assert "a" * 1000 not in response.text  # never echoed
            assert database_state(live) == before
