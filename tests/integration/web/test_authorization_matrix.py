"""Every route of the app, tried with every kind of caller: generated from the route table.

The routes are read from `app.routes` (through FastAPI's own flattening of included routers), so a
route added later is checked as soon as it exists: a path that no entry of `AUDIENCES` classifies
fails `test_every_route_is_classified` until someone decides who may call it. Only the static
files and FastAPI's own documentation routes are skipped, and that set is pinned exactly.

Each matrix test builds all the credentials once and then loops over its routes, collecting every
mismatch, so one run reports the whole list ("PUT /api/... as user_token: expected 403, got 200")
instead of stopping at the first.
"""

from __future__ import annotations

import enum
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI, routing
from starlette.routing import Mount, Route

from retargeting.db import auth
from retargeting.runtime import Runtime
from retargeting.services import credentials
from retargeting.settings import Settings
from retargeting.web.app import create_app
from retargeting.web.sessions import CSRF_FIELD, CSRF_HEADER, SESSION_COOKIE
from tests.factories import TEST_KEY
from tests.integration.web.conftest import PASSWORD, SUPERADMIN_EMAIL, USER_EMAIL, bearer
from tests.support import api_bodies
from tests.support.testclient import TestClient


class Audience(enum.StrEnum):
    INGEST = "ingest"
    SUPERADMIN_API = "superadmin-api"
    SUPERADMIN_PAGES = "superadmin-pages"
    PUBLIC = "public"


# Who may call what, by path: an entry ending in "/" is a prefix, any other an exact path. A path
# must match exactly one entry; a new route that matches none fails the test below on purpose.
AUDIENCES: tuple[tuple[str, Audience], ...] = (
    ("/api/v1/organizations/", Audience.INGEST),
    ("/api/v1/events/", Audience.INGEST),
    ("/api/v1/platform/", Audience.SUPERADMIN_API),
    ("/platform/", Audience.SUPERADMIN_PAGES),
    ("/", Audience.PUBLIC),  # exact: the redirect to the admin page
    ("/healthz", Audience.PUBLIC),
    ("/metrics", Audience.PUBLIC),
    ("/login", Audience.PUBLIC),
    ("/logout", Audience.PUBLIC),
    ("/setup/", Audience.PUBLIC),
)

# Not part of the matrix, and nothing else may be: (kind, path) exactly.
SKIPPED = frozenset(
    {
        ("Mount", "/static"),
        ("Route", "/openapi.json"),
        ("Route", "/docs"),
        ("Route", "/docs/oauth2-redirect"),
        ("Route", "/redoc"),
    }
)

PATH_VALUES = {"org_id": "org-1", "token": "nope"}
_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

PIXEL_FORM = {"pixel_id": "1234567890", "test_event_code": "", "enabled": ""}

# Plausible bodies, so that the allowed callers get past validation where it is cheap to do so;
# a refused caller must be refused before the body is even looked at, so any body would do.
# (encoding, body) by (method, path template); a route missing here is sent without a body.
BODIES: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
    ("PUT", "/api/v1/organizations/{org_id}"): ("json", api_bodies.organization()),
    ("POST", "/api/v1/events/widget-view"): ("json", api_bodies.widget_view()),
    ("POST", "/api/v1/events/call-started"): ("json", api_bodies.call_started()),
    ("POST", "/api/v1/events/batch"): ("json", {"events": [api_bodies.batch_item()]}),
    ("PUT", "/api/v1/platform/retargeting/pixel"): (
        "json",
        {"pixel_id": "1234567890", "test_event_code": "", "enabled": False},
    ),
    ("PUT", "/api/v1/platform/retargeting/organizations/{org_id}"): (
        "json",
        {"retargeting_enabled": False},
    ),
    ("POST", "/platform/retargeting/pixel"): ("form", PIXEL_FORM),
    ("POST", "/platform/retargeting/organizations/{org_id}"): (
        "form",
        {"retargeting_enabled": "false", "return_query": ""},
    ),
    ("POST", "/platform/retargeting/test-event"): ("form", {}),
    # Public forms: never sent with a CSRF token here, so even right credentials are refused.
    ("POST", "/login"): ("form", {"email": SUPERADMIN_EMAIL, "password": PASSWORD}),
    ("POST", "/logout"): ("form", {}),
    ("POST", "/setup/{token}"): (
        "form",
        {"email": "new@greetnow.example", "password": PASSWORD, "password_confirm": PASSWORD},
    ),
}


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    template: str  # the route's path, with its {parameters}
    audience: Audience

    @property
    def url(self) -> str:
        def value(match: re.Match[str]) -> str:
            return PATH_VALUES[match.group(1)]

        return _PARAM.sub(value, self.template)

    @property
    def safe(self) -> bool:
        return self.method in SAFE_METHODS

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


@dataclass(frozen=True, slots=True)
class RouteTable:
    endpoints: list[Endpoint] = field(default_factory=list)
    skipped: set[tuple[str, str]] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)


def _flattened(app: FastAPI) -> Iterator[tuple[Any, str | None, set[str] | None]]:
    """(original route, full path, methods) of every route, included routers flattened."""
    iter_contexts = getattr(routing, "iter_route_contexts", None)
    if iter_contexts is None:  # FastAPI before lazily included routers: app.routes is flat
        for route in app.routes:
            yield route, getattr(route, "path", None), getattr(route, "methods", None)
        return
    for context in iter_contexts(app.routes):
        yield context.original_route, context.path, context.methods


def _matches(pattern: str, path: str) -> bool:
    is_prefix = len(pattern) > 1 and pattern.endswith("/")
    return path.startswith(pattern) if is_prefix else path == pattern


def audience_of(path: str) -> list[Audience]:
    return [audience for pattern, audience in AUDIENCES if _matches(pattern, path)]


def route_table(app: FastAPI) -> RouteTable:
    table = RouteTable()
    for route, path, methods in _flattened(app):
        kind = type(route).__name__
        if path is None:
            table.problems.append(f"a {kind} without a path: cannot be checked")
            continue
        if (
            isinstance(route, Mount)
            or path in {"/openapi.json", "/redoc"}
            or path.startswith(("/docs", "/redoc"))
        ):
            table.skipped.add(("Mount" if isinstance(route, Mount) else kind, path))
            continue
        if not isinstance(route, Route):  # APIRoute is a Route; a websocket would land here
            table.problems.append(f"{kind} {path}: not an HTTP route, add a way to check it")
            continue
        audiences = audience_of(path)
        if len(audiences) != 1:
            reason = "unclassified route" if not audiences else f"matches {audiences}"
            table.problems.append(f"{path}: {reason}: add it to the matrix (AUDIENCES)")
            continue
        unknown = [name for name in _PARAM.findall(path) if name not in PATH_VALUES]
        if unknown:
            table.problems.append(f"{path}: no plausible value for {unknown} in PATH_VALUES")
            continue
        for method in sorted(methods or ()):
            table.endpoints.append(Endpoint(method, path, audiences[0]))
    return table


def standalone_table() -> RouteTable:
    settings = Settings(database_url="sqlite://", secret_key=TEST_KEY, environment="test")
    return route_table(create_app(settings))  # nothing connects until the app starts


# --- credentials ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Credential:
    name: str
    headers: dict[str, str] = field(default_factory=dict)
    session: str | None = None  # the session cookie's value
    csrf: str | None = None  # sent (header for the API, form field for pages) when set


CREDENTIAL_NAMES = (
    "none",
    "ingest_key",
    "user_token",
    "expired_token",
    "revoked_token",
    "superadmin_token",
    "anonymous_session",
    "user_session",
    "superadmin_session",
    "superadmin_session_no_csrf",
)

_META_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
_FORM_CSRF = re.compile(rf'name="{CSRF_FIELD}" value="([^"]+)"')


def _session_cookie(client: TestClient) -> str:
    value = client.cookies.get(SESSION_COOKIE)
    assert value, "no session cookie was set"
    return str(value)


def _signed_in(client: TestClient, email: str) -> tuple[str, str]:
    """(cookie, CSRF token) of a browser session signed in through the /login form."""
    client.cookies.clear()
    form_csrf = _FORM_CSRF.search(client.get("/login").text)
    assert form_csrf, "the sign-in form carries no CSRF token"
    form = {"email": email, "password": PASSWORD, CSRF_FIELD: form_csrf.group(1)}
    answer = client.post("/login", data=form, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    cookie = _session_cookie(client)
    page = client.get("/platform/retargeting", follow_redirects=False)  # 200, or the 403 page
    meta = _META_CSRF.search(page.text)
    assert meta, f"no CSRF token on the page ({page.status_code})"
    client.cookies.clear()
    return cookie, meta.group(1)


@pytest.fixture
def callers(
    client: TestClient,
    runtime: Runtime,
    superadmin_token: str,
    user_token: str,
    ingest_key: str,
) -> dict[str, Credential]:
    """Every kind of caller, built once: expired and revoked tokens belong to the superadmin."""
    now = time.time()
    expired = credentials.create_token(
        runtime.engine,
        email=SUPERADMIN_EMAIL,
        name="expired",
        expires_days=1,
        now=now - 2 * credentials.SECONDS_PER_DAY,  # issued two days ago for one day
    )
    revoked = credentials.create_token(
        runtime.engine, email=SUPERADMIN_EMAIL, name="revoked", expires_days=None, now=now
    )
    org = client.put(
        "/api/v1/organizations/org-1", json=api_bodies.organization(), headers=bearer(ingest_key)
    )
    assert org.status_code == 201  # so that "org-1" in a path names a real organization
    pixel_api = "/api/v1/platform/retargeting/pixel"
    assert client.get(pixel_api, headers=bearer(revoked.secret)).status_code == 200
    with runtime.engine.begin() as conn:
        assert auth.revoke_token(conn, revoked.id, time.time())

    user_cookie, user_csrf = _signed_in(client, USER_EMAIL)
    admin_cookie, admin_csrf = _signed_in(client, SUPERADMIN_EMAIL)
    client.cookies.clear()
    form_csrf = _FORM_CSRF.search(client.get("/login").text)
    assert form_csrf
    anonymous_cookie = _session_cookie(client)
    client.cookies.clear()

    built = {
        "none": Credential("none"),
        "ingest_key": Credential("ingest_key", bearer(ingest_key)),
        "user_token": Credential("user_token", bearer(user_token)),
        "expired_token": Credential("expired_token", bearer(expired.secret)),
        "revoked_token": Credential("revoked_token", bearer(revoked.secret)),
        "superadmin_token": Credential("superadmin_token", bearer(superadmin_token)),
        "anonymous_session": Credential(
            "anonymous_session", session=anonymous_cookie, csrf=form_csrf.group(1)
        ),
        "user_session": Credential("user_session", session=user_cookie, csrf=user_csrf),
        "superadmin_session": Credential(
            "superadmin_session", session=admin_cookie, csrf=admin_csrf
        ),
        "superadmin_session_no_csrf": Credential(
            "superadmin_session_no_csrf", session=admin_cookie
        ),
    }
    assert tuple(built) == CREDENTIAL_NAMES
    return built


# --- expectations ---------------------------------------------------------------------------


class Outcome(enum.StrEnum):
    ALLOWED = "allowed (not 401/403/5xx, not sent to /login)"
    UNAUTHORIZED = "401 with WWW-Authenticate: Bearer"
    FORBIDDEN = "403"
    TO_LOGIN = "303 to /login?next=<the path>"


def expected(endpoint: Endpoint, caller: str) -> Outcome:
    superadmin_ok = {"superadmin_session"} | (
        {"superadmin_session_no_csrf"} if endpoint.safe else set()
    )
    match endpoint.audience:
        case Audience.INGEST:
            return Outcome.ALLOWED if caller == "ingest_key" else Outcome.UNAUTHORIZED
        case Audience.SUPERADMIN_API:
            if caller == "superadmin_token" or caller in superadmin_ok:
                return Outcome.ALLOWED
            if caller in {"user_token", "user_session", "superadmin_session_no_csrf"}:
                return Outcome.FORBIDDEN  # not a superadmin, or a session's write without CSRF
            return Outcome.UNAUTHORIZED
        case Audience.SUPERADMIN_PAGES:
            if caller in superadmin_ok:
                return Outcome.ALLOWED
            if caller in {"user_session", "superadmin_session_no_csrf"}:
                return Outcome.FORBIDDEN
            return Outcome.TO_LOGIN  # a bearer token is no browser sign-in
        case Audience.PUBLIC:
            # Forms are posted here without their CSRF token: refused, whoever sends them.
            return Outcome.ALLOWED if endpoint.safe else Outcome.FORBIDDEN


def call(client: TestClient, endpoint: Endpoint, caller: Credential) -> Any:
    headers = dict(caller.headers)
    if caller.session is not None:
        headers["Cookie"] = f"{SESSION_COOKIE}={caller.session}"
    encoding, body = BODIES.get((endpoint.method, endpoint.template), ("none", {}))
    body = dict(body)
    if caller.csrf is not None and endpoint.audience is Audience.SUPERADMIN_API:
        headers[CSRF_HEADER] = caller.csrf
    if caller.csrf is not None and endpoint.audience is Audience.SUPERADMIN_PAGES:
        body[CSRF_FIELD] = caller.csrf  # a form field; GETs send no body at all
    client.cookies.clear()  # only what this caller sends; nothing left over from the last call
    kwargs: dict[str, Any] = {"headers": headers, "follow_redirects": False}
    if encoding == "json":
        kwargs["json"] = body
    elif body or encoding == "form":
        kwargs["data"] = body
    try:
        return client.request(endpoint.method, endpoint.url, **kwargs)
    finally:
        client.cookies.clear()


def mismatch(endpoint: Endpoint, outcome: Outcome, response: Any) -> str | None:
    status = response.status_code
    location = response.headers.get("location", "")
    if outcome is Outcome.ALLOWED:
        refused = status in (401, 403) or status >= 500 or location.startswith("/login")
        return f"got {status} {location}".rstrip() if refused else None
    if outcome is Outcome.UNAUTHORIZED:
        challenge = response.headers.get("WWW-Authenticate")
        ok = status == 401 and challenge == "Bearer"
        return None if ok else f"got {status} (WWW-Authenticate: {challenge})"
    if outcome is Outcome.FORBIDDEN:
        return None if status == 403 else f"got {status} {location}".rstrip()
    target = f"/login?next={quote(endpoint.url, safe='')}"
    return None if (status, location) == (303, target) else f"got {status} {location}".rstrip()


# --- tests ----------------------------------------------------------------------------------


def test_every_route_is_classified() -> None:
    table = standalone_table()
    assert not table.problems, "\n".join(table.problems)
    assert table.skipped == SKIPPED, "only the static files and the API docs may be skipped"
    for audience in Audience:
        assert any(e.audience is audience for e in table.endpoints), f"no {audience} route"
    assert len(table.endpoints) == len(set(table.endpoints)), "a route is listed twice"
    assert len(table.endpoints) >= 27  # 27 when this matrix was written


def test_the_classification_table_rejects_a_stranger() -> None:
    assert audience_of("/admin/users") == []
    assert audience_of("/platform") == []  # no prefix entry matches its bare parent
    assert audience_of("/api/v1/other") == []
    assert audience_of("/") == [Audience.PUBLIC]


@pytest.mark.parametrize("audience", list(Audience), ids=str)
def test_authorization_matrix(
    client: TestClient, app: FastAPI, callers: dict[str, Credential], audience: Audience
) -> None:
    table = route_table(app)
    assert not table.problems, "\n".join(table.problems)
    endpoints = [e for e in table.endpoints if e.audience is audience]
    assert endpoints, f"no {audience} route"
    failures: list[str] = []
    checked = 0
    for endpoint in endpoints:
        for name, caller in callers.items():
            outcome = expected(endpoint, name)
            response = call(client, endpoint, caller)
            checked += 1
            problem = mismatch(endpoint, outcome, response)
            if problem:
                failures.append(f"{endpoint} as {name}: expected {outcome.value}, {problem}")
    assert checked == len(endpoints) * len(CREDENTIAL_NAMES)
    assert not failures, f"{len(failures)} of {checked} cells wrong:\n" + "\n".join(failures)
