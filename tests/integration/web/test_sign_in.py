"""Sign-in, sessions, CSRF, the first-run setup link and the security headers."""

from __future__ import annotations

import re
import time

from retargeting.runtime import Runtime
from retargeting.services import credentials, sign_in
from retargeting.web.security_headers import CONTENT_SECURITY_POLICY
from tests.integration.web.conftest import PASSWORD, SUPERADMIN_EMAIL, USER_EMAIL
from tests.support.testclient import TestClient

PIXEL_API = "/api/v1/platform/retargeting/pixel"


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the form carries no CSRF token"
    return match.group(1)


def make_user(runtime: Runtime, email: str = SUPERADMIN_EMAIL, *, superadmin: bool = True) -> None:
    credentials.create_user(
        runtime.engine, email=email, password=PASSWORD, is_superadmin=superadmin, now=time.time()
    )


def log_in(
    client: TestClient, email: str = SUPERADMIN_EMAIL, password: str = PASSWORD, **extra: str
):  # type: ignore[no-untyped-def]
    token = csrf_of(client.get("/login").text)
    form = {"email": email, "password": password, "csrf_token": token, **extra}
    return client.post("/login", data=form, follow_redirects=False)


def test_signed_out_visitor_is_sent_to_login_with_next(client: TestClient) -> None:
    answer = client.get("/platform/retargeting?page=2", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Fplatform%2Fretargeting%3Fpage%3D2"


def test_sign_in_sets_a_hardened_cookie_and_redirects(client: TestClient, runtime: Runtime) -> None:
    make_user(runtime)
    answer = log_in(client, next="/platform/retargeting?search=acme")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/platform/retargeting?search=acme"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain HTTP here; see the HTTPS test
    assert client.get(PIXEL_API).status_code == 200  # the session reaches the API too


def test_cookie_is_secure_over_https(runtime: Runtime, client: TestClient) -> None:
    make_user(runtime)
    https = TestClient(client.app, base_url="https://testserver")  # no `with`: same lifespan
    try:
        answer = log_in(https)
    finally:
        https.close()
    assert "Secure" in answer.headers["set-cookie"]


def test_wrong_password_then_growing_delays(client: TestClient, runtime: Runtime) -> None:
    make_user(runtime)
    for _ in range(sign_in.FREE_ATTEMPTS):
        answer = log_in(client, password="wrong password!")
        assert answer.status_code == 401
        assert "Wrong email or password." in answer.text
    answer = log_in(client)  # even the right password waits now
    assert answer.status_code == 429
    assert "Too many failed attempts" in answer.text


def test_delays_grow_and_are_capped() -> None:
    delays = [sign_in.delay_after(n) for n in range(12)]
    assert delays[: sign_in.FREE_ATTEMPTS] == [0.0] * sign_in.FREE_ATTEMPTS
    assert delays[3:7] == [2.0, 4.0, 8.0, 16.0]
    assert sign_in.delay_after(100) == sign_in.MAX_DELAY_SECONDS


def test_unknown_email_is_refused_like_a_wrong_password(client: TestClient) -> None:
    answer = log_in(client, email="nobody@example.com")
    assert answer.status_code == 401
    assert "Wrong email or password." in answer.text


def test_login_without_csrf_is_refused(client: TestClient, runtime: Runtime) -> None:
    make_user(runtime)
    client.get("/login")
    form = {"email": SUPERADMIN_EMAIL, "password": PASSWORD}
    answer = client.post("/login", data=form, follow_redirects=False)
    assert answer.status_code == 403
    assert client.get(PIXEL_API).status_code == 401


def test_open_redirects_are_refused(client: TestClient, runtime: Runtime) -> None:
    make_user(runtime)
    answer = log_in(client, next="//evil.example/phish")
    assert answer.headers["location"] == "/platform/retargeting"


def test_session_api_writes_need_the_csrf_header(client: TestClient, runtime: Runtime) -> None:
    make_user(runtime)
    log_in(client)
    body = {"pixel_id": "123", "test_event_code": "", "enabled": False}
    assert client.put(PIXEL_API, json=body).status_code == 403
    assert client.get(PIXEL_API).json()["pixel_id"] == ""
    page_token = (
        csrf_of(client.get("/login?next=/x", follow_redirects=False).text) if False else None
    )
    del page_token
    session_csrf = _session_csrf(client)
    answer = client.put(PIXEL_API, json=body, headers={"X-CSRF-Token": session_csrf})
    assert answer.status_code == 200
    assert answer.json()["pixel_id"] == "123"


def _session_csrf(client: TestClient) -> str:
    """The signed-in session's token, as the page embeds it in its forms."""
    answer = client.post("/logout", data={}, follow_redirects=False)  # refused: no token
    assert answer.status_code == 403
    return csrf_of(answer.text)


def test_non_superadmin_gets_403_on_the_api(client: TestClient, runtime: Runtime) -> None:
    make_user(runtime, USER_EMAIL, superadmin=False)
    log_in(client, USER_EMAIL)
    assert client.get(PIXEL_API).status_code == 403


def test_logout_ends_the_session(client: TestClient, runtime: Runtime) -> None:
    make_user(runtime)
    log_in(client)
    token = _session_csrf(client)
    answer = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert answer.status_code == 303
    assert "Max-Age=0" in answer.headers["set-cookie"]
    assert client.get(PIXEL_API).status_code == 401


def test_first_run_setup_link_works_once(client: TestClient, runtime: Runtime) -> None:
    link = sign_in.issue_setup_link(runtime.engine, time.time())
    assert link is not None
    page = client.get(f"/setup/{link.token}")
    assert page.status_code == 200
    form = {
        "email": "First@Example.com",
        "password": "a long enough password",
        "password_confirm": "a long enough password",
        "csrf_token": csrf_of(page.text),
    }
    answer = client.post(f"/setup/{link.token}", data=form, follow_redirects=False)
    assert answer.status_code == 303
    assert client.get(PIXEL_API).status_code == 200  # signed in as the new superadmin
    assert client.get(f"/setup/{link.token}").status_code == 404
    assert sign_in.issue_setup_link(runtime.engine, time.time()) is None


def test_setup_link_rejects_a_wrong_token_and_weak_passwords(
    client: TestClient, runtime: Runtime
) -> None:
    link = sign_in.issue_setup_link(runtime.engine, time.time())
    assert link is not None
    assert client.get("/setup/not-the-token").status_code == 404
    page = client.get(f"/setup/{link.token}")
    form = {
        "email": "first@example.com",
        "password": "short",
        "password_confirm": "short",
        "csrf_token": csrf_of(page.text),
    }
    answer = client.post(f"/setup/{link.token}", data=form)
    assert answer.status_code == 422
    assert "at least 12 characters" in answer.text


def test_pages_carry_a_strict_content_security_policy(client: TestClient) -> None:
    answer = client.get("/login")
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_a_copied_cookie_dies_with_the_sign_out(client: TestClient, runtime: Runtime) -> None:
    make_user(runtime)
    log_in(client)
    stolen = dict(client.cookies)
    token = _session_csrf(client)
    client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    thief = TestClient(client.app)  # no `with`: it shares the running app's lifespan
    try:
        thief.cookies.update(stolen)
        assert thief.get(PIXEL_API).status_code == 401
    finally:
        thief.close()
    log_in(client)  # signing in again works and starts a new epoch
    assert client.get(PIXEL_API).status_code == 200
