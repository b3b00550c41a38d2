"""Counts of failed sign-ins, keyed by (email, address) and by address alone."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, delete, select

from retargeting.db import dialect
from retargeting.db.tables import login_failures


def read(conn: Connection, keys: Sequence[str]) -> list[tuple[int, float]]:
    """(failures, last failure time) for each key that has any."""
    rows = conn.execute(
        select(login_failures.c.failures, login_failures.c.last_failed_at).where(
            login_failures.c.key.in_(list(keys))
        )
    ).all()
    return [(int(row[0]), float(row[1])) for row in rows]


def add_failure(conn: Connection, keys: Sequence[str], now: float) -> None:
    for key in keys:
        dialect.insert_or_update(
            conn,
            login_failures,
            {"key": key, "failures": 1, "last_failed_at": now},
            key="key",
            update={"failures": login_failures.c.failures + 1, "last_failed_at": now},
        )


def clear(conn: Connection, keys: Sequence[str]) -> None:
    conn.execute(delete(login_failures).where(login_failures.c.key.in_(list(keys))))
