"""The pageview and call rows that the admin's counts are made of."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, insert

from retargeting.db.tables import call_logs, widget_pageviews
from retargeting.domain.events import Interaction, InteractionKind, derive_event_id, sha256_hex


def insert_rows(conn: Connection, interactions: Sequence[Interaction], now: float) -> None:
    """One executemany per table; only the visitor's hash is stored, never the raw id."""
    pageviews = [
        {
            "organization_id": i.organization_id,
            "visitor_hash": sha256_hex(i.visitor_id),
            "page_url": i.page_url,
            "event_id": derive_event_id(i),
            "occurred_at": i.event_time,
            "created_at": now,
        }
        for i in interactions
        if i.kind is InteractionKind.WIDGET_VIEW
    ]
    calls = [
        {
            "organization_id": i.organization_id,
            "call_id": i.call_id or "",
            "visitor_hash": sha256_hex(i.visitor_id),
            "page_url": i.page_url,
            "occurred_at": i.event_time,
            "created_at": now,
        }
        for i in interactions
        if i.kind is InteractionKind.CALL_STARTED
    ]
    if pageviews:
        conn.execute(_INSERT_PAGEVIEW, pageviews)
    if calls:
        conn.execute(_INSERT_CALL, calls)


_INSERT_PAGEVIEW = insert(widget_pageviews)
_INSERT_CALL = insert(call_logs)
