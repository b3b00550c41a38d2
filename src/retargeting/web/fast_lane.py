"""The event endpoints served from the top of the middleware stack, in one frame.

A request reaches its handler through the app's layers: the last-resort error handler, the
security headers, the session cookie, the body size limit, the exception handlers and the
router's matching, each a coroutine and most a wrapper around `send`. For a single event that
was about a tenth of serve's CPU at saturation (py-spy), more than validating the event. The
lane takes a POST to an event endpoint whose declared Content-Length is within the path's limit
and does for it what those layers would, by their own code:

- the route's specialised handler (`IngestRoute.handle_request`), as the router would call it;
- the app's exception handlers, looked up as Starlette's ExceptionMiddleware looks them up;
- `security_headers.with_security_headers` on every answer;
- `middleware.answer_unhandled` for a bug, as CatchAll answers it.

Nothing else applies to these requests: the event handlers never touch a session, and the body
limit holds because the server reads no more than the declared length. Every other request
(another path or method, a chunked body, a declared length over the limit: the 413 comes from
`BodySizeLimit`) goes down the whole stack.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from retargeting.web.ingest_route import IngestRoute
from retargeting.web.middleware import BodyLimits, answer_unhandled, declared_length
from retargeting.web.security_headers import with_security_headers

ExceptionHandler = Any  # Starlette's: (request, exc) -> Response, sync or async


class IngestFastLane:
    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Iterable[BaseRoute],
        limits: BodyLimits,
        exception_handlers: Mapping[Any, ExceptionHandler],
    ) -> None:
        self._app = app
        self._routes = {
            route.path: route
            for route in routes
            if isinstance(route, IngestRoute) and route.methods == {"POST"}
        }
        self._limits = limits
        # As Starlette splits them: 500 and Exception are the outermost error handler's.
        handlers = {k: v for k, v in exception_handlers.items() if k not in (500, Exception)}
        self._by_status = {k: v for k, v in handlers.items() if isinstance(k, int)}
        self._by_type = {k: v for k, v in handlers.items() if isinstance(k, type)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._routes.get(scope["path"]) if scope["type"] == "http" else None
        if route is None or scope["method"] != "POST" or not self._within_limit(scope):
            await self._app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            response = await route.handle_request(request)
        except Exception as exc:
            try:
                response = await self._handled(request, exc)
            except Exception as unhandled:
                await answer_unhandled(unhandled, scope, send, started=False)
                return
        response.raw_headers = with_security_headers(response.raw_headers, scope["path"])
        try:
            await response(scope, receive, send)
        except Exception as exc:  # only sending is left to fail: too late for another answer
            await answer_unhandled(exc, scope, send, started=True)

    def _within_limit(self, scope: Scope) -> bool:
        declared = declared_length(scope)
        return declared is not None and 0 <= declared <= self._limits.for_path(scope["path"])

    async def _handled(self, request: Request, exc: Exception) -> Response:
        """The app's answer to `exc`, or `exc` again when no handler takes it."""
        handler = None
        if isinstance(exc, HTTPException):
            handler = self._by_status.get(exc.status_code)
        if handler is None:
            handler = next(
                (self._by_type[cls] for cls in type(exc).__mro__ if cls in self._by_type), None
            )
        if handler is None:
            raise exc
        if inspect.iscoroutinefunction(handler):
            response: Response = await handler(request, exc)
        else:
            response = await run_in_threadpool(handler, request, exc)
        return response
