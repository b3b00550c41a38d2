"""The application factory: nothing connects or reads the environment until the app starts.

`create_app(settings)` wires routers, error handlers and middleware; the lifespan builds the
`Runtime` (engine, cipher, settings snapshot, metrics, Graph API client) and runs its background
loops: the settings poll always, the dispatcher when this process delivers. Tests build one app
per test against their own database.

Routers are split by audience (platform servers, superadmins, operations). The server-rendered
admin page (issue 3: /platform/retargeting with cookie sessions) will add its own router and the
session middleware here; the JSON API stays bearer-only and keeps no cookies.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from retargeting import __version__, runtime
from retargeting.settings import Settings
from retargeting.web import errors, routes_ingest, routes_ops, routes_platform
from retargeting.web.middleware import MIB, BodySizeLimit, CatchAll

log = logging.getLogger(__name__)

BODY_LIMIT_BYTES = 2 * MIB  # a single event or organization is a few hundred bytes
BATCH_BODY_LIMIT_BYTES = 8 * MIB  # 1,000 events of a few KiB each, with room to spare
BATCH_PATH = "/api/v1/events/batch"


def create_app(settings: Settings, *, deliver: bool | None = None) -> FastAPI:
    """Build the app; `deliver` overrides `settings.embedded_worker` (tests pass False)."""
    delivers = settings.embedded_worker if deliver is None else deliver

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = runtime.build_runtime(settings)
        async with runtime.running(rt, deliver=delivers):
            app.state.runtime = rt
            log.info(
                "app started",
                extra={"action": "app_start", "deliver": delivers, "worker_id": rt.worker_id},
            )
            yield
        log.info("app stopped", extra={"action": "app_stop"})

    app = FastAPI(
        title="GreetNow retargeting",
        version=__version__,
        summary="Widget views and call starts, delivered to Meta's Conversions API.",
        lifespan=lifespan,
    )
    errors.install(app)
    app.include_router(routes_ingest.router)
    app.include_router(routes_platform.router)
    app.include_router(routes_ops.router)
    # Added innermost first: CatchAll wraps BodySizeLimit wraps the routes.
    app.add_middleware(
        BodySizeLimit, default=BODY_LIMIT_BYTES, per_path={BATCH_PATH: BATCH_BODY_LIMIT_BYTES}
    )
    app.add_middleware(CatchAll)
    return app
