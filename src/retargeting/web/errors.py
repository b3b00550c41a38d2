"""Error answers of the JSON API: one shape, never a secret, never a 500 for bad input.

Validation errors keep FastAPI's standard `detail[].loc / msg / type` shape, so a client can
point at the field, but drop the `input` that FastAPI echoes by default: bodies carry visitors'
IP addresses and the Meta access token. Errors found after validation (an unknown organization,
a pixel field the service refused) are raised through `field_error` in the same shape.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import exc as sa_exc

from retargeting.security import UndecryptableSecret
from retargeting.web import middleware, sessions, templating

log = logging.getLogger(__name__)

Loc = tuple[str | int, ...]

_PRIMITIVES = (str, int, float, bool, type(None))


def field_error(loc: Loc, message: str, kind: str = "value_error") -> RequestValidationError:
    """A 422 for one field, in FastAPI's shape: `raise errors.field_error(("body", "x"), "...")`."""
    return field_errors([(loc, message, kind)])


def field_errors(problems: Sequence[tuple[Loc, str, str]]) -> RequestValidationError:
    return RequestValidationError(
        [{"type": kind, "loc": loc, "msg": message} for loc, message, kind in problems]
    )


def _public(error: Any) -> dict[str, Any]:
    public: dict[str, Any] = {
        "type": error.get("type", "value_error"),
        "loc": list(error.get("loc", ())),
        "msg": error.get("msg", ""),
    }
    ctx = error.get("ctx")
    if isinstance(ctx, dict):
        public["ctx"] = {
            key: value if isinstance(value, _PRIMITIVES) else str(value)
            for key, value in ctx.items()
        }
    return public


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": [_public(e) for e in exc.errors()]}, status_code=422)


async def undecryptable_secret(request: Request, exc: Exception) -> JSONResponse:
    """The secret key changed under a stored token: say so, rather than a bare 500."""
    log.error("stored access token undecryptable", extra={"action": "undecryptable_token"})
    return JSONResponse({"detail": str(exc)}, status_code=500)


UNAVAILABLE_RETRY_AFTER_SECONDS = 1
# What the database raises while it cannot serve: PostgreSQL restarting or refusing connections,
# the pool exhausted, a SQLite writer lock held past busy_timeout. None of them is the caller's
# fault or a bug, and all of them pass: a 503 with Retry-After tells the platform to send again.
DATABASE_UNAVAILABLE = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)


async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning(
        "database unavailable: %s",
        middleware.describe(exc),
        extra={"action": "database_unavailable", "path": request.url.path},
    )
    return JSONResponse(
        {"detail": "the database is unavailable for a moment; retry the request"},
        status_code=503,
        headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_SECONDS)},
    )


async def page_redirect(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, sessions.PageRedirect)
    return sessions.redirect(exc.location)


async def page_forbidden(request: Request, exc: Exception) -> Response:
    """A clear 403 page (not JSON) for a signed-in user who is not a superadmin, or a bad form."""
    assert isinstance(exc, sessions.PageForbidden)
    context = {
        "user_email": exc.user_email,
        "reason": exc.reason,
        "csrf_token": sessions.csrf_token(request),
    }
    return templating.render(request, "forbidden.html", context, status_code=403)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(UndecryptableSecret, undecryptable_secret)
    for unavailable in DATABASE_UNAVAILABLE:
        app.add_exception_handler(unavailable, database_unavailable)
    app.add_exception_handler(sessions.PageRedirect, page_redirect)
    app.add_exception_handler(sessions.PageForbidden, page_forbidden)
