"""Sign-in, sign-out and the first-run setup link: the only pages a stranger may see.

Every form here carries the visitor's CSRF token (an anonymous session starts when the form is
shown), so not even the sign-in form can be posted from another site.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from retargeting.services import credentials, sign_in
from retargeting.web import deps, sessions, templating

router = APIRouter(include_in_schema=False)

HOME = "/platform/retargeting"
MAX_FIELD = 1000


def _safe_next(target: str | None) -> str:
    """Only same-site paths: never `//evil.example` or an absolute URL (open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return HOME
    return target


@router.get("/")
def root() -> RedirectResponse:
    return sessions.redirect(HOME)


def _login_page(
    request: Request,
    *,
    email: str = "",
    next_: str = HOME,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    return templating.render(
        request,
        "login.html",
        {
            "csrf_token": sessions.csrf_token(request),
            "email": email,
            "next": _safe_next(next_),
            "error": error,
        },
        status_code=status,
    )


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    if sessions.signed_in_user(request) is not None:
        return sessions.redirect(_safe_next(next))
    return _login_page(request, next_=_safe_next(next))


@router.post("/login")
def login(
    request: Request,
    runtime: deps.RuntimeDep,
    email: Annotated[str, Form(max_length=MAX_FIELD)] = "",
    password: Annotated[str, Form(max_length=MAX_FIELD)] = "",
    next: Annotated[str, Form(max_length=MAX_FIELD)] = HOME,
    csrf_token: Annotated[str, Form(max_length=MAX_FIELD)] = "",
) -> Response:
    if not sessions.csrf_matches(request, csrf_token):
        return _login_page(
            request,
            email=email,
            next_=next,
            error="The form expired. Please sign in again.",
            status=403,
        )
    address = request.client.host if request.client else "unknown"
    try:
        user = sign_in.authenticate(
            runtime.engine, email=email, password=password, address=address, now=time.time()
        )
    except sign_in.TooManyAttempts as exc:
        return _login_page(
            request,
            email=email,
            next_=next,
            error=f"Too many failed attempts. Try again in {int(exc.retry_after) + 1} seconds.",
            status=429,
        )
    except sign_in.SignInRefused:
        return _login_page(
            request, email=email, next_=next, error="Wrong email or password.", status=401
        )
    sessions.sign_in(request, user)
    return sessions.redirect(_safe_next(next))


@router.post("/logout")
def logout(request: Request, csrf: sessions.CsrfFormDep) -> RedirectResponse:
    sessions.sign_out(request)
    return sessions.redirect("/login")


def _setup_page(
    request: Request, token: str, *, email: str = "", error: str | None = None, status: int = 200
) -> HTMLResponse:
    return templating.render(
        request,
        "setup.html",
        {
            "csrf_token": sessions.csrf_token(request),
            "token": token,
            "email": email,
            "error": error,
        },
        status_code=status,
    )


def _setup_gone(request: Request) -> HTMLResponse:
    return templating.render(
        request,
        "forbidden.html",
        {
            "user_email": None,
            "csrf_token": sessions.csrf_token(request),
            "reason": "This setup link is no longer valid. Sign in instead, or ask for a new link "
            "(restart `retargeting serve` while no superadmin exists).",
        },
        status_code=404,
    )


@router.get("/setup/{token}")
def setup_form(request: Request, token: str, runtime: deps.RuntimeDep) -> HTMLResponse:
    if not sign_in.setup_link_valid(runtime.engine, token, time.time()):
        return _setup_gone(request)
    return _setup_page(request, token)


@router.post("/setup/{token}")
def setup(
    request: Request,
    token: str,
    runtime: deps.RuntimeDep,
    email: Annotated[str, Form(max_length=MAX_FIELD)] = "",
    password: Annotated[str, Form(max_length=MAX_FIELD)] = "",
    password_confirm: Annotated[str, Form(max_length=MAX_FIELD)] = "",
    csrf_token: Annotated[str, Form(max_length=MAX_FIELD)] = "",
) -> Response:
    if not sessions.csrf_matches(request, csrf_token):
        return _setup_page(
            request, token, email=email, error="The form expired. Please try again.", status=403
        )
    if password != password_confirm:
        return _setup_page(
            request, token, email=email, error="The two passwords differ.", status=422
        )
    try:
        user = sign_in.complete_setup(
            runtime.engine, token=token, email=email, password=password, now=time.time()
        )
    except sign_in.SetupLinkInvalid:
        return _setup_gone(request)
    except credentials.CredentialError as exc:
        return _setup_page(request, token, email=email, error=str(exc).capitalize(), status=422)
    sessions.sign_in(request, user)
    return sessions.redirect(HOME)
