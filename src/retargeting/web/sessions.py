"""Browser sessions: a signed cookie carrying the user id and the CSRF token, nothing else.

The cookie is HttpOnly, SameSite=Lax, Secure when the request came over HTTPS, and expires after
`SESSION_MAX_AGE`. Every visitor who sees a form gets a session (anonymous until sign-in) so that
even the sign-in form carries a CSRF token. The cookie is written by `SessionCookies`, a pure ASGI
middleware that does nothing on requests that never touched a session (the ingest hot path).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from retargeting.db import auth
from retargeting.db.engine import READ_ONLY
from retargeting.runtime import Runtime

SESSION_COOKIE = "retargeting_session"
SESSION_MAX_AGE = 12 * 3600  # seconds; a working day, then sign in again
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
_STATE_KEY = "retargeting_session"
_WRITE_KEY = "retargeting_session_write"
_SALT = "retargeting.session.v1"


@dataclass(frozen=True, slots=True)
class Session:
    csrf: str
    user_id: int | None = None
    epoch: int = 0  # the user's session epoch when signed in; a sign-out moves it on


class PageRedirect(Exception):
    """Raised by page dependencies to send the browser elsewhere (sign-in)."""

    def __init__(self, location: str) -> None:
        self.location = location


class PageForbidden(Exception):
    """Raised for a signed-in user who may not see the page, or a failed CSRF check."""

    def __init__(self, user_email: str | None, reason: str) -> None:
        self.user_email = user_email
        self.reason = reason


def _serializer(runtime: Runtime) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(runtime.signing_key, salt=_SALT)


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def current(request: Request) -> Session | None:
    """The request's session, from its cookie (verified and unexpired) or set during it."""
    state: dict[str, Any] = request.scope.setdefault("state", {})
    if _STATE_KEY in state:
        session: Session | None = state[_STATE_KEY]
        return session
    session = None
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        try:
            data = _serializer(_runtime(request)).loads(cookie, max_age=SESSION_MAX_AGE)
            session = Session(
                csrf=str(data["csrf"]), user_id=data.get("uid"), epoch=int(data.get("ep", 0))
            )
        except (BadSignature, KeyError, TypeError):
            session = None
    state[_STATE_KEY] = session
    return session


def _store(request: Request, session: Session | None) -> None:
    """Remember the session for this request and have the middleware write (or clear) it."""
    state: dict[str, Any] = request.scope.setdefault("state", {})
    state[_STATE_KEY] = session
    if session is None:
        state[_WRITE_KEY] = ""
    else:
        payload = {"csrf": session.csrf, "uid": session.user_id, "ep": session.epoch}
        state[_WRITE_KEY] = _serializer(_runtime(request)).dumps(payload)


def csrf_token(request: Request) -> str:
    """The CSRF token for this visitor's forms, starting an anonymous session if needed."""
    session = current(request)
    if session is None:
        session = Session(csrf=secrets.token_urlsafe(32))
        _store(request, session)
    return session.csrf


def sign_in(request: Request, user: auth.User) -> None:
    """A fresh session (new CSRF token) for the signed-in user: no fixation across sign-in."""
    _store(
        request,
        Session(csrf=secrets.token_urlsafe(32), user_id=user.id, epoch=user.session_epoch),
    )


def sign_out(request: Request) -> None:
    """Clear the cookie here and end the user's sessions everywhere (a copied cookie included)."""
    session = current(request)
    if session is not None and session.user_id is not None:
        with _runtime(request).engine.begin() as conn:
            auth.end_sessions(conn, session.user_id)
    _store(request, None)


def csrf_matches(request: Request, supplied: str | None) -> bool:
    session = current(request)
    if session is None or not supplied:
        return False
    return hmac.compare_digest(session.csrf.encode(), supplied.encode())


def signed_in_user(request: Request) -> auth.User | None:
    session = current(request)
    if session is None or session.user_id is None:
        return None
    runtime = _runtime(request)
    with runtime.engine.connect().execution_options(**{READ_ONLY: True}) as conn:
        user = auth.user_by_id(conn, session.user_id)
    if user is None or user.session_epoch != session.epoch:
        return None  # signed out since (here or elsewhere), or the user is gone
    return user


def _page_superadmin(request: Request) -> auth.User:
    user = signed_in_user(request)
    if user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise PageRedirect(f"/login?next={quote(target, safe='')}")
    if not user.is_superadmin:
        raise PageForbidden(user.email, "You need to be a superadmin to see this page.")
    return user


PageUserDep = Annotated[auth.User, Depends(_page_superadmin)]


async def _check_csrf_form(request: Request) -> None:
    form = await request.form()
    supplied = form.get(CSRF_FIELD)
    if not csrf_matches(request, supplied if isinstance(supplied, str) else None):
        user = signed_in_user(request)
        raise PageForbidden(
            user.email if user else None,
            "This form has expired or did not come from this site. Reload the page and try again.",
        )


CsrfFormDep = Annotated[None, Depends(_check_csrf_form)]


def redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303)


class SessionCookies:
    """Writes the session cookie that a handler set or cleared; passes everything else through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                value = scope.get("state", {}).get(_WRITE_KEY)
                if value is not None:
                    secure = "; Secure" if scope.get("scheme") == "https" else ""
                    age = SESSION_MAX_AGE if value else 0
                    expires = "" if value else "; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
                    MutableHeaders(scope=message).append(
                        "set-cookie",
                        f"{SESSION_COOKIE}={value}; Path=/; Max-Age={age}{expires}; HttpOnly; "
                        f"SameSite=Lax{secure}",
                    )
            await send(message)

        await self.app(scope, receive, send_with_cookie)
