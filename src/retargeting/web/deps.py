"""Request dependencies: the process's runtime and the two kinds of bearer credential.

Ingest keys are checked against the hashes in the settings snapshot, with no database query, so
the hot path stays cheap; a new or revoked key takes effect within one settings poll. Personal
access tokens are looked up in the database on each admin request, so a revoked or expired token
stops working at once. Each kind is refused on the other's routes: the hashes live in separate
tables and an ingest key is simply not a valid personal token.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy import Engine

from retargeting import security
from retargeting.db import auth
from retargeting.db.engine import READ_ONLY
from retargeting.runtime import Runtime
from retargeting.web import sessions
from retargeting.web.schemas import ORG_ID_PATTERN

ingest_bearer = HTTPBearer(
    scheme_name="IngestApiKey",
    description="An ingest API key (`retargeting api-keys create`), for the platform's servers.",
    auto_error=False,
)
personal_bearer = HTTPBearer(
    scheme_name="PersonalAccessToken",
    description="A superadmin's personal access token (`retargeting tokens create`).",
    auto_error=False,
)

BearerCredentials = HTTPAuthorizationCredentials | None
OrgIdPath = Annotated[str, Path(min_length=1, max_length=100, pattern=ORG_ID_PATTERN)]


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_engine(runtime: RuntimeDep) -> Engine:
    return runtime.engine


EngineDep = Annotated[Engine, Depends(get_engine)]


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


async def require_ingest_key(
    credentials: Annotated[BearerCredentials, Depends(ingest_bearer)], runtime: RuntimeDep
) -> None:
    """An `async def` on purpose: a plain `def` would cost a thread hop on every event."""
    check_ingest_key(credentials.credentials if credentials else None, runtime)


def check_ingest_authorization(authorization: str | None, runtime: Runtime) -> None:
    """`require_ingest_key` from the Authorization header as it came: the event endpoints'
    own path, read as `HTTPBearer` reads it, without building its credentials model."""
    scheme, credentials = get_authorization_scheme_param(authorization)
    bearer = bool(authorization and credentials) and scheme.lower() == "bearer"
    check_ingest_key(credentials if bearer else None, runtime)


def check_ingest_key(key: str | None, runtime: Runtime) -> None:
    if key is None:
        raise unauthorized("missing bearer API key")
    if security.hash_bearer(key) not in runtime.snapshot.current.api_key_hashes:
        raise unauthorized("invalid or revoked API key")


IngestKeyDep = Annotated[None, Depends(require_ingest_key)]


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def current_user(
    request: Request,
    credentials: Annotated[BearerCredentials, Depends(personal_bearer)],
    runtime: RuntimeDep,
) -> auth.User:
    """The token's owner, or the signed-in browser's user; blocking, so run in the thread pool.

    A browser session may call the API (the page's scripts do), but a state-changing request
    must then carry the session's CSRF token in `X-CSRF-Token`: the cookie alone proves nothing.
    """
    if credentials is None:
        user = sessions.signed_in_user(request)
        if user is None:
            raise unauthorized("missing bearer token")
        supplied = request.headers.get(sessions.CSRF_HEADER)
        if request.method not in SAFE_METHODS and not sessions.csrf_matches(request, supplied):
            raise HTTPException(403, f"missing or wrong {sessions.CSRF_HEADER} header")
        return user
    token = credentials.credentials
    if not token.startswith(f"{security.PERSONAL_TOKEN_PREFIX}_"):
        raise unauthorized("invalid, expired or revoked token")  # no query for a foreign string
    with runtime.engine.connect().execution_options(**{READ_ONLY: True}) as conn:
        user = auth.user_by_token(conn, security.hash_bearer(token), time.time())
    if user is None:
        raise unauthorized("invalid, expired or revoked token")
    return user


async def current_superadmin(user: Annotated[auth.User, Depends(current_user)]) -> auth.User:
    if not user.is_superadmin:
        raise HTTPException(403, "this needs a superadmin")
    return user


SuperadminDep = Annotated[auth.User, Depends(current_superadmin)]
