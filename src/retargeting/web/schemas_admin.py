"""Request and response bodies of the superadmin API under /api/v1/platform/retargeting.

Field-level rules for the pixel (digits-only pixel id, token shape, test event code) live in
`services.pixel_settings` so the API and the admin page (issue 3) enforce the same ones; these
models only bound sizes and types. Timestamps in responses are ISO 8601 in UTC.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints
from pydantic_core import PydanticCustomError

from retargeting.db import audit, outbox, settings_store
from retargeting.domain.delivery import GraphError
from retargeting.domain.pixel import PixelState
from retargeting.graph.client import Accepted
from retargeting.services import delivery_report, pixel_settings
from retargeting.web.schemas import STRICT, OrganizationOut

MAX_PAGE_SIZE = 200
MAX_AUDIT_LIMIT = 200


def utc(timestamp: float | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC)


def _test_event_code(value: str) -> str:
    if value.strip() and not pixel_settings.TEST_EVENT_CODE_PATTERN.match(value.strip()):
        raise PydanticCustomError(
            "test_event_code_invalid", "must be letters, digits, '-' or '_' (like TEST12345)"
        )
    return value.strip()


class PixelIn(BaseModel):
    """A full replacement of the pixel settings, except the write-only access token."""

    model_config = STRICT

    pixel_id: Annotated[str, StringConstraints(max_length=100)] = Field(
        description="The pixel's numeric ID, or empty to clear it."
    )
    access_token: Annotated[str, StringConstraints(max_length=10_000)] | None = Field(
        default=None, description="Write-only. Omitted, null or empty keeps the stored token."
    )
    test_event_code: Annotated[str, StringConstraints(max_length=100)] = Field(
        description="Events carry it while set, so they show in Events Manager's Test events "
        "tab instead of counting as real; empty to send real events."
    )
    enabled: bool


class PixelOut(BaseModel):
    pixel_id: str
    access_token_set: bool
    access_token_last4: str | None
    test_event_code: str
    enabled: bool
    state: PixelState


class SortOrder(enum.StrEnum):
    ASC = "asc"
    DESC = "desc"


class OrganizationPage(BaseModel):
    items: list[OrganizationOut]
    total: int = Field(description="Organizations matching the filters.")
    page: int
    page_size: int
    enabled_count: int = Field(description="Organizations with retargeting on, overall.")
    organization_count: int = Field(description="All organizations, overall.")


class RetargetingToggleIn(BaseModel):
    model_config = STRICT

    retargeting_enabled: bool


class TestEventIn(BaseModel):
    __test__ = False  # not a pytest test class, despite the name
    model_config = STRICT

    test_event_code: (
        Annotated[str, StringConstraints(max_length=64), AfterValidator(_test_event_code)] | None
    ) = Field(default=None, description="Overrides the stored test event code for this test.")


class GraphErrorOut(BaseModel):
    """Meta's error object, as Meta worded it: the admin needs its message and fbtrace_id."""

    message: str
    code: int | None
    error_subcode: int | None
    type: str | None
    error_user_msg: str | None
    fbtrace_id: str | None
    is_transient: bool
    http_status: int | None

    @classmethod
    def of(cls, error: GraphError) -> GraphErrorOut:
        return cls(
            message=error.message,
            code=error.code,
            error_subcode=error.error_subcode,
            type=error.type,
            error_user_msg=error.error_user_msg,
            fbtrace_id=error.fbtrace_id,
            is_transient=error.is_transient,
            http_status=error.http_status,
        )


class TestEventAccepted(BaseModel):
    __test__ = False

    ok: Literal[True] = True
    event_id: str
    test_event_code: str
    events_received: int
    fbtrace_id: str | None
    messages: list[str]

    @classmethod
    def of(cls, event_id: str, code: str, answer: Accepted) -> TestEventAccepted:
        return cls(
            event_id=event_id,
            test_event_code=code,
            events_received=answer.events_received,
            fbtrace_id=answer.fbtrace_id,
            messages=list(answer.messages),
        )


class TestEventRejected(BaseModel):
    __test__ = False

    ok: Literal[False] = False
    event_id: str
    test_event_code: str
    error: GraphErrorOut


class EventStatsOut(BaseModel):
    event_name: str
    queued: int
    delivered: int
    failed: int
    expired: int
    last_delivered_at: datetime | None

    @classmethod
    def of(cls, row: outbox.EventNameStats) -> EventStatsOut:
        return cls(
            event_name=row.event_name,
            queued=row.queued,
            delivered=row.delivered,
            failed=row.failed,
            expired=row.expired,
            last_delivered_at=utc(row.last_delivered_at),
        )


class LastErrorOut(BaseModel):
    event_name: str
    event_id: str
    status: str = Field(description="failed, or pending while it waits for another attempt")
    message: str = Field(description="Meta's message, or the transport failure")
    code: int | None
    fbtrace_id: str | None
    attempts: int
    at: datetime | None = Field(description="When the attempt that produced this error was made")

    @classmethod
    def of(cls, row: outbox.LastError) -> LastErrorOut:
        return cls(
            event_name=row.event_name,
            event_id=row.event_id,
            status=row.status,
            message=row.error,
            code=row.error_code,
            fbtrace_id=row.fbtrace_id,
            attempts=row.attempts,
            at=utc(row.at),
        )


class PauseOut(BaseModel):
    """Delivery stopped because Meta refused the token or permissions; events are kept."""

    reason: str
    code: int | None
    error_subcode: int | None
    since: datetime
    fbtrace_id: str | None

    @classmethod
    def of(cls, pause: settings_store.DeliveryPause) -> PauseOut:
        return cls(
            reason=pause.reason,
            code=pause.code,
            error_subcode=pause.error_subcode,
            since=datetime.fromtimestamp(pause.since, UTC),
            fbtrace_id=pause.fbtrace_id,
        )


class DeliveryOut(BaseModel):
    pixel_state: PixelState
    paused: PauseOut | None
    events: list[EventStatsOut]
    last_errors: list[LastErrorOut]

    @classmethod
    def of(cls, report: delivery_report.DeliveryReport) -> DeliveryOut:
        return cls(
            pixel_state=report.pixel_state,
            paused=None if report.paused is None else PauseOut.of(report.paused),
            events=[EventStatsOut.of(row) for row in report.events],
            last_errors=[LastErrorOut.of(row) for row in report.last_errors],
        )


class AuditEntryOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    old_value: Any = Field(description="Secrets are masked before they are written")
    new_value: Any

    @classmethod
    def of(cls, entry: audit.AuditEntry) -> AuditEntryOut:
        return cls(
            id=entry.id,
            at=datetime.fromtimestamp(entry.at, UTC),
            actor=entry.actor,
            action=entry.action,
            target=entry.target,
            old_value=entry.old_value,
            new_value=entry.new_value,
        )


class AuditOut(BaseModel):
    items: list[AuditEntryOut]
