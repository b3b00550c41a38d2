"""Two pure ASGI middlewares: a request-body size limit and the last-resort error handler.

Pure ASGI rather than `BaseHTTPMiddleware`, because the ingest endpoints answer thousands of
requests a second and each wrapper layer there costs real throughput.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson
from sqlalchemy.exc import StatementError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

MIB = 1024 * 1024


def _json_response_messages(status: int, detail: str) -> tuple[Message, Message]:
    body = orjson.dumps({"detail": detail})
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    return start, {"type": "http.response.body", "body": body}


def _too_large(limit: int) -> str:
    return f"request body too large: the limit is {limit / MIB:g} MiB"


@dataclass(frozen=True)
class BodyLimits:
    """The most bytes a request body may have: per path, else the default."""

    default: int
    per_path: Mapping[str, int] = field(default_factory=dict)

    def for_path(self, path: str) -> int:
        return self.per_path.get(path, self.default)


class BodySizeLimit:
    """Refuse bodies over a per-path limit with 413, before reading them when Content-Length says.

    Chunked bodies are counted as they arrive; the 413 is raised from inside the body read, where
    FastAPI lets an HTTPException through to the exception handlers.
    """

    def __init__(self, app: ASGIApp, *, limits: BodyLimits) -> None:
        self._app = app
        self._limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        limit = self._limits.for_path(scope["path"])
        declared = declared_length(scope)
        if declared is not None and (declared < 0 or declared > limit):
            status, detail = (413, _too_large(limit)) if declared > limit else (400, "bad length")
            for message in _json_response_messages(status, detail):
                await send(message)
            return
        if declared is not None:
            await self._app(scope, receive, send)  # the server enforces the declared length
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, _too_large(limit))
            return message

        await self._app(scope, counting_receive, send)


def declared_length(scope: Scope) -> int | None:
    """The request's Content-Length: None if it has none, -1 if it is not a number."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return -1
    return None


class CatchAll:
    """Turn a bug into a generic JSON 500 and one sanitised log record.

    Starlette's own handler re-raises so the server logs the exception again, and SQLAlchemy's
    messages carry the statement's parameters (IP addresses, user agents); here the log gets the
    stack and the error's type, never parameters or the request body, and nothing is re-raised.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self._app(scope, receive, tracking_send)
        except Exception as exc:
            await answer_unhandled(exc, scope, send, started=started)


async def answer_unhandled(exc: Exception, scope: Scope, send: Send, *, started: bool) -> None:
    """CatchAll's answer to `exc`: one sanitised log record, then a generic 500, or the error
    raised again if the answer had started (too late for a clean one: the server drops the
    connection)."""
    log.error(
        "unhandled error: %s\n%s",
        describe(exc),
        "".join(traceback.format_tb(exc.__traceback__)),
        extra={
            "action": "http_unhandled_error",
            "method": scope.get("method"),
            "path": scope.get("path"),
        },
    )
    if started:
        raise exc
    for message in _json_response_messages(500, "internal server error"):
        await send(message)


def describe(exc: BaseException) -> str:
    """The error's type and message, minus the SQL parameters that SQLAlchemy would quote."""
    if isinstance(exc, StatementError):
        orig = exc.orig
        inner = f"{type(orig).__name__}: {str(orig).splitlines()[0] if str(orig) else ''}"
        return f"{type(exc).__name__} ({inner})"
    return f"{type(exc).__name__}: {exc}"
