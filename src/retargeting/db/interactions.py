"""The pageview and call rows that the admin's counts are made of."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection

from retargeting.db import dialect
from retargeting.db.tables import call_logs, widget_pageviews
from retargeting.domain.events import Interaction, InteractionKind, Prepared

_PAGEVIEW_COLUMNS = (
    "organization_id",
    "visitor_hash",
    "page_url",
    "event_id",
    "occurred_at",
    "created_at",
)
_CALL_COLUMNS = (
    "organization_id",
    "call_id",
    "visitor_hash",
    "page_url",
    "occurred_at",
    "created_at",
)


Row = tuple[str, str, str, str, int, float]


def rows(
    interactions: Sequence[Interaction], prepared: Sequence[Prepared], now: float
) -> tuple[list[Row], list[Row]]:
    """(pageview rows, call rows), built before the transaction; only the visitor's hash is
    stored, never the raw id."""
    pageviews: list[Row] = []
    calls: list[Row] = []
    for i, p in zip(interactions, prepared, strict=True):
        if i.kind is InteractionKind.WIDGET_VIEW:
            pageviews.append(
                (i.organization_id, p.visitor_hash, i.page_url, p.event_id, i.event_time, now)
            )
        else:
            calls.append(
                (i.organization_id, i.call_id or "", p.visitor_hash, i.page_url, i.event_time, now)
            )
    return pageviews, calls


def insert_rows(conn: Connection, pageviews: Sequence[Row], calls: Sequence[Row]) -> None:
    """One executemany per table."""
    dialect.insert_many(conn, widget_pageviews, _PAGEVIEW_COLUMNS, pageviews)
    dialect.insert_many(conn, call_logs, _CALL_COLUMNS, calls)
