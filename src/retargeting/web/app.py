"""The application factory: nothing connects or reads the environment until the app starts.

`create_app(settings)` wires routers, error handlers and middleware; the lifespan builds the
`Runtime` (engine, cipher, settings snapshot, metrics, Graph API client) and runs its background
loops: the settings poll always, the dispatcher when this process delivers. Tests build one app
per test against their own database.

Routers are split by audience (platform servers, superadmins, operations, the sign-in pages and
the admin page). The JSON API takes bearer credentials, or the browser's session with a CSRF
header; only the sign-in and page routes ever set a cookie.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from retargeting import __version__, metrics, runtime
from retargeting.settings import Settings
from retargeting.web import (
    errors,
    routes_auth,
    routes_ingest,
    routes_ops,
    routes_pages,
    routes_platform,
    templating,
)
from retargeting.web.fast_lane import IngestFastLane
from retargeting.web.middleware import MIB, BodyLimits, BodySizeLimit, CatchAll
from retargeting.web.security_headers import SecurityHeaders
from retargeting.web.sessions import SessionCookies

log = logging.getLogger(__name__)

BODY_LIMIT_BYTES = 2 * MIB  # a single event or organization is a few hundred bytes
BATCH_BODY_LIMIT_BYTES = 8 * MIB  # 1,000 events of a few KiB each, with room to spare
BATCH_PATH = "/api/v1/events/batch"
BODY_LIMITS = BodyLimits(BODY_LIMIT_BYTES, {BATCH_PATH: BATCH_BODY_LIMIT_BYTES})
GC_YOUNG_THRESHOLD = 50_000


def create_app(settings: Settings, *, deliver: bool | None = None) -> FastAPI:
    """Build the app; `deliver` overrides `settings.embedded_worker` (tests pass False)."""
    delivers = settings.embedded_worker if deliver is None else deliver

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = runtime.build_runtime(settings)
        async with runtime.running(rt, deliver=delivers):
            app.state.runtime = rt
            # Everything loaded so far (modules, templates, the schema) lives as long as the
            # process: keep it out of the collector's full passes, which would otherwise walk
            # it all every few seconds under load and stall requests for tens of milliseconds.
            gc.freeze()
            # A 1,000-event batch allocates ~6,000 container objects, all alive until it is
            # answered: at the default threshold (700) each batch ran about eight young
            # collections that walked them; 2.5% of a batch event's instructions (callgrind).
            gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
            log.info(
                "app started",
                extra={"action": "app_start", "deliver": delivers, "worker_id": rt.worker_id},
            )
            yield
        metrics.forget_this_process()
        log.info("app stopped", extra={"action": "app_stop"})

    app = FastAPI(
        title="GreetNow retargeting",
        version=__version__,
        summary="Widget views and call starts, delivered to Meta's Conversions API.",
        lifespan=lifespan,
        # Metrics are Prometheus' (/metrics); FastAPI's native OpenTelemetry would otherwise ask
        # its providers on every request whether anyone is listening.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    errors.install(app)
    # The event endpoints go straight into the app's route table, first: include_router would wrap
    # each in FastAPI's generic per-request layers, which `IngestRoute` exists to leave out.
    app.router.routes[0:0] = routes_ingest.events_router.routes
    app.include_router(routes_auth.router)
    app.include_router(routes_ingest.router)
    app.include_router(routes_platform.router)
    app.include_router(routes_ops.router)
    # The admin page (issue 3): its router and its CSS/JS, served from the package.
    app.include_router(routes_pages.router)
    app.mount("/static", StaticFiles(directory=templating.STATIC_DIR), name="static")
    # Added innermost first: CatchAll wraps BodySizeLimit wraps the routes.
    app.add_middleware(BodySizeLimit, limits=BODY_LIMITS)
    _document_unparsable_bodies(app)
    app.add_middleware(SessionCookies)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(CatchAll)
    # Outermost: the event endpoints' requests skip the layers above (see `fast_lane`).
    app.add_middleware(
        IngestFastLane,
        routes=routes_ingest.events_router.routes,
        limits=BODY_LIMITS,
        exception_handlers=app.exception_handlers,
    )
    return app


UNPARSABLE_BODY = {"description": "The body is not UTF-8 JSON, or is nested too deeply to parse"}


def _document_unparsable_bodies(app: FastAPI) -> None:
    """Every operation that takes a body can answer 400 before validation; say so in the schema."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            for operations in document.get("paths", {}).values():
                for operation in operations.values():
                    if "requestBody" in operation:
                        operation["responses"].setdefault("400", UNPARSABLE_BODY)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
