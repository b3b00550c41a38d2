"""The platform servers' API: organization sync and the widget-view / call-started events.

The event handlers are the hot path. They validate on the event loop and hand the interactions
to the process's group committer (`outbox/group_commit.py`), which writes the requests that
arrive together in one transaction on a worker thread and answers each once its rows are
committed: durable, without paying one commit per request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from fastapi import APIRouter, Depends, Response, status

from retargeting.domain.events import Interaction
from retargeting.outbox import recording
from retargeting.runtime import Runtime
from retargeting.services import organizations
from retargeting.web import deps, errors
from retargeting.web.errors import Loc
from retargeting.web.ingest_route import IngestRoute
from retargeting.web.schemas import (
    AcceptedOut,
    BatchIn,
    CallStartedIn,
    OrganizationIn,
    OrganizationOut,
    WidgetViewIn,
)

_UNAUTHORIZED: dict[int | str, dict[str, object]] = {
    401: {"description": "Missing, invalid or revoked ingest API key"}
}
router = APIRouter(
    prefix="/api/v1",
    tags=["ingest"],
    dependencies=[Depends(deps.require_ingest_key)],
    responses=_UNAUTHORIZED,
)
# The event endpoints: the same key check, run by `IngestRoute` itself on the hot path.
events_router = APIRouter(
    prefix="/api/v1",
    tags=["ingest"],
    dependencies=[Depends(deps.require_ingest_key)],
    responses=_UNAUTHORIZED,
    route_class=IngestRoute,
)

_EVENT_RESPONSES: dict[int | str, dict[str, object]] = {
    413: {"description": "Body over the size limit"},
    422: {"description": "A field is invalid, or names an unknown organization"},
    503: {"description": "The database is briefly unavailable; send again after Retry-After"},
}


@router.put(
    "/organizations/{org_id}",
    responses={201: {"description": "Created", "model": OrganizationOut}},
)
def put_organization(
    org_id: deps.OrgIdPath, body: OrganizationIn, runtime: deps.RuntimeDep, response: Response
) -> OrganizationOut:
    """Create or update an organization's name and status (201 when created, 200 when updated).

    The retargeting flag and the counters are never changed by this call.
    """
    org, created = organizations.upsert(
        runtime.engine, org_id=org_id, name=body.name, status=body.status, now=time.time()
    )
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return OrganizationOut.of(org)


@events_router.post(
    "/events/widget-view", status_code=status.HTTP_202_ACCEPTED, responses=_EVENT_RESPONSES
)
async def widget_view(body: WidgetViewIn, runtime: deps.RuntimeDep) -> AcceptedOut:
    """Record a widget view; queues GreetNow_WidgetView (+ _B2B) while the pixel is active."""
    return await _record(runtime, [body], lambda _: ("body", "organization_id"))


@events_router.post(
    "/events/call-started", status_code=status.HTTP_202_ACCEPTED, responses=_EVENT_RESPONSES
)
async def call_started(body: CallStartedIn, runtime: deps.RuntimeDep) -> AcceptedOut:
    """Record a call start; queues GreetNow_CallStarted, Lead (+ _B2B) while the pixel is active."""
    return await _record(runtime, [body], lambda _: ("body", "organization_id"))


@events_router.post(
    "/events/batch", status_code=status.HTTP_202_ACCEPTED, responses=_EVENT_RESPONSES
)
async def batch(body: BatchIn, runtime: deps.RuntimeDep) -> AcceptedOut:
    """Record up to 1,000 interactions in one transaction: all of them, or none (422)."""
    return await _record(runtime, body.events, lambda i: ("body", "events", i, "organization_id"))


async def _record(
    runtime: Runtime,
    items: Sequence[WidgetViewIn | CallStartedIn],
    org_loc: Callable[[int], Loc],
) -> AcceptedOut:
    now = int(time.time())
    interactions: list[Interaction] = [item.to_interaction(now) for item in items]
    pixel_state = runtime.snapshot.current.pixel.state
    try:
        recorded = await runtime.committer.record(interactions, pixel_state)
    except recording.UnknownOrganizations as exc:
        unknown = set(exc.organization_ids)
        raise errors.field_errors(
            [
                (
                    org_loc(i),
                    f"unknown organization: {item.organization_id}",
                    "unknown_organization",
                )
                for i, item in enumerate(items)
                if item.organization_id in unknown
            ]
        ) from None
    queued = runtime.metrics.events_queued
    for event_name, count in recorded.by_event_name.items():
        queued.labels(event_name).inc(count)
    return AcceptedOut(accepted=recorded.interactions, events_queued=recorded.events_queued)
