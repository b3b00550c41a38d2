"""The superadmin API: pixel, organizations, test event, delivery report, audit log.

Handlers are plain `def` (FastAPI runs them in its thread pool) because each one does blocking
database work and none is on a hot path; the test-event handler is `async` because it awaits
Meta through the process's shared Graph API client. The services own the transactions and write
the audit entries, with the caller's email as the actor.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Body, Depends, HTTPException, Query

from retargeting.db import audit, orgs, settings_store
from retargeting.db.engine import READ_ONLY
from retargeting.domain.pixel import OrgToggleRefused
from retargeting.graph.client import Accepted
from retargeting.services import delivery_report, org_retargeting, pixel_settings, test_event
from retargeting.web import deps, errors
from retargeting.web.schemas import OrganizationOut
from retargeting.web.schemas_admin import (
    MAX_AUDIT_LIMIT,
    MAX_PAGE_SIZE,
    AuditEntryOut,
    AuditOut,
    DeliveryOut,
    GraphErrorOut,
    OrganizationPage,
    PixelIn,
    PixelOut,
    RetargetingToggleIn,
    SortOrder,
    TestEventAccepted,
    TestEventIn,
    TestEventRejected,
)

router = APIRouter(
    prefix="/api/v1/platform/retargeting",
    tags=["platform"],
    dependencies=[Depends(deps.current_superadmin)],
    responses={
        401: {"description": "Missing, invalid, expired or revoked personal access token"},
        403: {"description": "The token's owner is not a superadmin"},
    },
)

MAX_PAGE = 1_000_000  # keeps OFFSET far inside a 64-bit integer


@router.get("/pixel")
def get_pixel(runtime: deps.RuntimeDep) -> PixelOut:
    """The pixel settings; the access token itself is never returned, only whether one is set."""
    with runtime.engine.connect().execution_options(**{READ_ONLY: True}) as conn:
        pixel = settings_store.read_pixel(conn, runtime.cipher)
    return PixelOut.model_validate(pixel_settings.public_view(pixel))


@router.put("/pixel", responses={422: {"description": "A field is invalid (named in loc)"}})
def put_pixel(body: PixelIn, user: deps.SuperadminDep, runtime: deps.RuntimeDep) -> PixelOut:
    """Save the pixel. Omit `access_token` (or send null or "") to keep the stored one.

    Saving new credentials lifts a delivery pause. This process obeys the change at once, the
    others within one settings poll.
    """
    update = pixel_settings.PixelUpdate(
        pixel_id=body.pixel_id,
        enabled=body.enabled,
        test_event_code=body.test_event_code,
        access_token=body.access_token,
    )
    try:
        pixel = pixel_settings.update_pixel(
            runtime.engine, runtime.cipher, actor=user.email, update=update, now=time.time()
        )
    except pixel_settings.PixelUpdateRejected as exc:
        raise errors.field_error(("body", exc.field), exc.message) from None
    runtime.snapshot.refresh()
    return PixelOut.model_validate(pixel_settings.public_view(pixel))


@router.get("/organizations")
def list_organizations(
    runtime: deps.RuntimeDep,
    search: Annotated[str, Query(max_length=300, description="Part of the name")] = "",
    enabled_only: bool = False,
    sort: orgs.SortKey = orgs.SortKey.NAME,
    order: SortOrder = SortOrder.ASC,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
) -> OrganizationPage:
    """One page of organizations with their counts, filtered and sorted in SQL."""
    if not search.isprintable():  # a NUL would reach PostgreSQL as an error, not a miss
        raise errors.field_error(("query", "search"), "must contain printable characters only")
    with runtime.engine.connect().execution_options(**{READ_ONLY: True}) as conn:
        items, total = orgs.page(
            conn,
            search=search.strip(),
            enabled_only=enabled_only,
            sort=sort,
            descending=order is SortOrder.DESC,
            limit=page_size,
            offset=(page - 1) * page_size,
        )
        enabled_count, organization_count = orgs.counts(conn)
    return OrganizationPage(
        items=[OrganizationOut.of(org) for org in items],
        total=total,
        page=page,
        page_size=page_size,
        enabled_count=enabled_count,
        organization_count=organization_count,
    )


@router.put(
    "/organizations/{org_id}",
    responses={
        404: {"description": "Unknown organization"},
        409: {"description": "Switching on while the pixel is not active"},
    },
)
def put_organization_retargeting(
    org_id: deps.OrgIdPath,
    body: RetargetingToggleIn,
    user: deps.SuperadminDep,
    runtime: deps.RuntimeDep,
) -> OrganizationOut:
    """Switch the B2B audience on or off for one organization. Off is always allowed."""
    try:
        org = org_retargeting.set_retargeting(
            runtime.engine,
            runtime.cipher,
            actor=user.email,
            org_id=org_id,
            enabled=body.retargeting_enabled,
            now=time.time(),
        )
    except org_retargeting.OrganizationNotFound:
        raise HTTPException(404, f"unknown organization: {org_id}") from None
    except OrgToggleRefused as exc:
        raise HTTPException(409, str(exc)) from None
    return OrganizationOut.of(org)


@router.post(
    "/test-event",
    response_model=TestEventAccepted | TestEventRejected,
    responses={409: {"description": "No pixel ID / access token, or no test event code"}},
)
async def send_test_event(
    user: deps.SuperadminDep,
    runtime: deps.RuntimeDep,
    body: Annotated[TestEventIn | None, Body()] = None,
) -> TestEventAccepted | TestEventRejected:
    """Send one test widget view to Meta now and return Meta's verdict.

    Always 200 when Meta was asked: `ok` tells whether it accepted the event, and on refusal
    `error` carries Meta's own message, codes and fbtrace_id for the admin. A refusal is the
    test's result, not a failure of this service, so it is not a 5xx (which would page whoever
    watches this service's error rate). Works while the pixel is disabled, so credentials can be
    checked before switching it on.
    """
    try:
        result = await test_event.send(
            runtime.engine,
            runtime.cipher,
            runtime.graph,
            actor=user.email,
            test_event_code=None if body is None else body.test_event_code,
            now=time.time(),
        )
    except test_event.TestEventRefused as exc:
        raise HTTPException(409, str(exc)) from None
    answer = result.answer
    if isinstance(answer, Accepted):
        return TestEventAccepted.of(result.event_id, result.test_event_code, answer)
    return TestEventRejected(
        event_id=result.event_id,
        test_event_code=result.test_event_code,
        error=GraphErrorOut.of(answer),
    )


@router.get("/delivery")
def get_delivery(runtime: deps.RuntimeDep) -> DeliveryOut:
    """Per event name: queued, delivered, failed, expired; Meta's last errors; the pause, if any."""
    return DeliveryOut.of(delivery_report.build(runtime.engine, runtime.snapshot.current))


@router.get("/audit")
def get_audit(
    runtime: deps.RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=MAX_AUDIT_LIMIT)] = 50,
) -> AuditOut:
    """The most recent settings and toggle changes, newest first, secrets masked."""
    with runtime.engine.connect().execution_options(**{READ_ONLY: True}) as conn:
        entries = audit.recent(conn, limit=limit)
    return AuditOut(items=[AuditEntryOut.of(entry) for entry in entries])
