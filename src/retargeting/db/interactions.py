"""The pageview and call rows that the admin's counts are made of."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection

from retargeting.db import dialect
from retargeting.db.tables import call_logs, widget_pageviews
from retargeting.domain.events import Interaction, InteractionKind, derive_event_id

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


def insert_rows(
    conn: Connection, interactions: Sequence[Interaction], visitor_hashes: Sequence[str], now: float
) -> None:
    """One executemany per table; only the visitor's hash (given, one per interaction) is stored,
    never the raw id."""
    pageviews = []
    calls = []
    for i, visitor_hash in zip(interactions, visitor_hashes, strict=True):
        if i.kind is InteractionKind.WIDGET_VIEW:
            event_id = derive_event_id(i, visitor_hash)
            row = (i.organization_id, visitor_hash, i.page_url, event_id, i.event_time, now)
            pageviews.append(row)
        else:
            calls.append(
                (i.organization_id, i.call_id or "", visitor_hash, i.page_url, i.event_time, now)
            )
    dialect.insert_many(conn, widget_pageviews, _PAGEVIEW_COLUMNS, pageviews)
    dialect.insert_many(conn, call_logs, _CALL_COLUMNS, calls)
