"""Operations endpoints: a health check for load balancers and Prometheus metrics.

Neither needs credentials (neither reveals a secret or a visitor); keep them off the public
internet at the proxy if the queue figures are considered private.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from retargeting.db.engine import READ_ONLY
from retargeting.web import deps
from retargeting.web.middleware import describe

log = logging.getLogger(__name__)

router = APIRouter(tags=["ops"])


@router.get(
    "/healthz",
    responses={
        200: {"content": {"application/json": {"example": {"status": "ok"}}}},
        503: {"description": "The database does not answer"},
    },
)
def healthz(runtime: deps.RuntimeDep) -> JSONResponse:
    """200 when the database answers a trivial query, else 503."""
    try:
        with runtime.engine.connect().execution_options(**{READ_ONLY: True}) as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        log.warning(
            "health check failed: %s", describe(exc), extra={"action": "health_check_failed"}
        )
        return JSONResponse({"status": "unavailable", "detail": "database"}, status_code=503)
    return JSONResponse({"status": "ok"})


@router.get("/metrics", response_class=Response)
def metrics(runtime: deps.RuntimeDep) -> Response:
    """Prometheus text format; the outbox depth is read from the database at scrape time."""
    return Response(runtime.metrics.latest(), media_type=CONTENT_TYPE_LATEST)
