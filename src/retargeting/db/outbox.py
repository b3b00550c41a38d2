"""The outbox rows: enqueue, claim with a lease, write outcomes back, report, purge.

A claim moves `next_attempt_at` to the end of the lease and commits at once: no transaction is
ever held open across a request to Meta, and a worker killed mid-send loses nothing because its
rows simply fall due again when the lease ends.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import (
    Connection,
    Executable,
    bindparam,
    delete,
    func,
    literal_column,
    null,
    select,
    update,
)

from retargeting.db import dialect
from retargeting.db.tables import delivery_counters, outbox_events
from retargeting.domain.events import EventRow

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"
EXPIRED = "expired"

t = outbox_events

# The due index holds pending rows only (a delivered row leaves it rather than moving within
# it). A query can use a partial index only if its WHERE states the index's condition, which a
# bound parameter need not let it prove (PostgreSQL's generic plans; SQLite built without
# STAT4), so pending is spelt literally.
_IS_PENDING = t.c.status == literal_column(f"'{PENDING}'")


class ClaimedEvent(NamedTuple):
    """A NamedTuple: a claim builds a thousand at a time (a frozen dataclass cost 1 us each)."""

    id: int
    event_name: str
    event_id: str
    event_time: int
    attempts: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Retry:
    id: int
    next_attempt_at: float
    error: str
    error_code: int | None
    attempted_at: float


EnqueuedRow = tuple[str, str, str, int, str, str, int, float, float]


def enqueued_rows(events: Iterable[EventRow], now: float) -> list[EnqueuedRow]:
    """The rows `enqueue` inserts for queued events; built apart from it so that the ingest
    path builds them before taking the writer lock."""
    return [(*event, PENDING, 0, now, now) for event in events]


def enqueue(conn: Connection, rows: Sequence[EnqueuedRow]) -> None:
    """Insert rows from `enqueued_rows`, up to a hundred per statement."""
    dialect.insert_many(conn, t, _ENQUEUED_COLUMNS, rows)


_ENQUEUED_COLUMNS = (
    "organization_id",
    "event_name",
    "event_id",
    "event_time",
    "payload",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
)


def claim(
    conn: Connection, *, worker_id: str, now: float, lease_seconds: float, limit: int
) -> list[ClaimedEvent]:
    """Take up to `limit` due rows for this worker until `now + lease_seconds`.

    On PostgreSQL `FOR UPDATE SKIP LOCKED` lets any number of workers claim side by side; SQLite
    has one writer at a time, so the plain subquery is already exclusive.
    """
    statement = _claim_statement(limit, skip_locked=conn.dialect.name == "postgresql")
    parameters = {"now": now, "until": now + lease_seconds, "worker": worker_id}
    rows: Sequence[Any] = dialect.execute_prebuilt(conn, statement, parameters).all()
    claimed = [
        ClaimedEvent(row[0], row[1], row[2], int(row[3]), int(row[4]), (row[5] or "").encode())
        for row in rows
    ]
    claimed.sort()  # by id, the first field (unique, so nothing after it is compared)
    return claimed


@functools.lru_cache(maxsize=8)  # one per batch size and dialect family in use
def _claim_statement(limit: int, *, skip_locked: bool) -> Executable:
    """Built once: the worker claims many times a second, and SQLAlchemy's statement building,
    caching and row processing cost as much as SQLite's own work for 1,000 rows."""
    due = (
        select(t.c.id)
        .where(_IS_PENDING, t.c.next_attempt_at <= bindparam("now"))
        .order_by(t.c.next_attempt_at, t.c.id)
        .limit(limit)
    )
    if skip_locked:
        due = due.with_for_update(skip_locked=True)
    return (
        update(t)
        .where(t.c.id.in_(due.scalar_subquery()))
        .values(next_attempt_at=bindparam("until"), claimed_by=bindparam("worker"))
        .returning(t.c.id, t.c.event_name, t.c.event_id, t.c.event_time, t.c.attempts, t.c.payload)
    )


def mark_delivered(
    conn: Connection, ids: Iterable[int], *, worker_id: str, fbtrace_id: str | None, now: float
) -> int:
    """Delivered rows drop their payload: IP and user agent are kept only until delivery."""
    return _finish(conn, ids, worker_id, DELIVERED, now, fbtrace_id=fbtrace_id)


def mark_failed(
    conn: Connection,
    ids: Iterable[int],
    *,
    worker_id: str,
    error: str,
    error_code: int | None,
    fbtrace_id: str | None,
    now: float,
) -> int:
    return _finish(
        conn, ids, worker_id, FAILED, now, error=error, error_code=error_code, fbtrace_id=fbtrace_id
    )


def mark_expired(conn: Connection, ids: Iterable[int], *, worker_id: str, now: float) -> int:
    return _finish(
        conn, ids, worker_id, EXPIRED, now, error="older than Meta's 7-day window; not sent"
    )


# Pending means not finished: every terminal status sets `finished_at`. Spelt this way for the
# id-list updates because SQLite, given `status = 'pending'`, walks the status index over every
# pending row (25-40 ms per 1,000 ids with 200,000 waiting) instead of looking the ids up.
_STILL_PENDING = t.c.finished_at.is_(None)


def _finish(
    conn: Connection,
    ids: Iterable[int],
    worker_id: str,
    status: str,
    now: float,
    *,
    error: str | None = None,
    error_code: int | None = None,
    fbtrace_id: str | None = None,
) -> int:
    id_list = list(ids)
    if not id_list:
        return 0
    parameters = {
        "ids": dialect.id_list(id_list, conn.dialect.name),
        "worker": worker_id,
        "now": now,
        "error": error,
        "code": error_code,
        "fbtrace": fbtrace_id,
    }
    statement = _finish_statement(status, conn.dialect.name)
    finished = Counter(dialect.execute_prebuilt(conn, statement, parameters).scalars())
    _count(conn, status, finished, now)
    return finished.total()


@functools.lru_cache(maxsize=16)  # per final status and dialect
def _finish_statement(status: str, dialect_name: str) -> Executable:
    """Built once: a batch's 1,000 ids travel as one parameter, since SQLAlchemy's expanding
    IN rebuilt the statement with 1,000 placeholders for every batch."""
    expired = status == EXPIRED
    return (
        update(t)
        .where(
            dialect.in_id_list(t.c.id, "ids", dialect_name),
            t.c.claimed_by == bindparam("worker"),
            _STILL_PENDING,
        )
        .values(
            status=status,
            attempts=t.c.attempts + (0 if expired else 1),
            payload=null(),
            finished_at=bindparam("now"),
            last_attempt_at=t.c.last_attempt_at if expired else bindparam("now"),
            last_error=bindparam("error"),
            last_error_code=bindparam("code"),
            fbtrace_id=bindparam("fbtrace"),
        )
        .returning(t.c.event_name)
    )


def _count(conn: Connection, status: str, by_name: Counter[str], now: float) -> None:
    """Add finished events to the running totals, in the transaction that finished them."""
    column = delivery_counters.c[status]
    for name, count in sorted(by_name.items()):
        values: dict[str, object] = {"event_name": name, status: count}
        update_: dict[str, object] = {status: column + count}
        if status == DELIVERED:
            values["last_delivered_at"] = now
            update_["last_delivered_at"] = now
        dialect.insert_or_update(conn, delivery_counters, values, key="event_name", update=update_)


def schedule_retries(conn: Connection, retries: Sequence[Retry], *, worker_id: str) -> int:
    """One executemany for the batch; each row keeps its own backoff."""
    if not retries:
        return 0
    stmt = (
        update(t)
        .where(
            t.c.id == bindparam("row_id"),
            t.c.claimed_by == worker_id,
            t.c.status == PENDING,
        )
        .values(
            next_attempt_at=bindparam("due"),
            last_attempt_at=bindparam("attempted_at"),
            attempts=t.c.attempts + 1,
            last_error=bindparam("error"),
            last_error_code=bindparam("code"),
        )
    )
    result = conn.execute(
        stmt,
        [
            {
                "row_id": r.id,
                "due": r.next_attempt_at,
                "attempted_at": r.attempted_at,
                "error": r.error,
                "code": r.error_code,
            }
            for r in retries
        ],
    )
    return int(result.rowcount)


def release(conn: Connection, ids: Iterable[int], *, worker_id: str, now: float) -> int:
    """Give rows back without counting an attempt (delivery paused while they were claimed)."""
    id_list = list(ids)
    if not id_list:
        return 0
    result = conn.execute(
        update(t)
        .where(t.c.id.in_(id_list), t.c.claimed_by == worker_id, _STILL_PENDING)
        .values(next_attempt_at=now, claimed_by=None)
    )
    return int(result.rowcount)


def expire_stale(conn: Connection, *, older_than_event_time: int, now: float) -> int:
    """Pending rows past Meta's window are expired in place, even if no worker claims them."""
    names = conn.execute(
        update(t)
        .where(_IS_PENDING, t.c.event_time < older_than_event_time)
        .values(
            status=EXPIRED,
            payload=None,
            finished_at=now,
            last_error="older than Meta's 7-day window; not sent",
        )
        .returning(t.c.event_name)
    ).scalars()
    expired = Counter(names)
    _count(conn, EXPIRED, expired, now)
    return expired.total()


def purge_finished(conn: Connection, *, finished_before: float, limit: int = 10_000) -> int:
    """Delete finished rows past retention, a bounded chunk at a time."""
    ids = (
        select(t.c.id)
        .where(t.c.status != PENDING, t.c.finished_at < finished_before)
        .limit(limit)
        .scalar_subquery()
    )
    return int(conn.execute(delete(t).where(t.c.id.in_(ids))).rowcount)


def depth(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).where(_IS_PENDING)).scalar_one())


@dataclass(frozen=True, slots=True)
class EventNameStats:
    event_name: str
    queued: int
    delivered: int
    failed: int
    expired: int
    last_delivered_at: float | None


def stats_by_event_name(conn: Connection) -> list[EventNameStats]:
    """Totals from the running counters; only the waiting rows are counted (by index)."""
    waiting: dict[str, int] = dict(
        conn.execute(
            select(t.c.event_name, func.count()).where(_IS_PENDING).group_by(t.c.event_name)
        ).all()
    )
    counters = {row.event_name: row for row in conn.execute(select(delivery_counters)).all()}
    return [
        EventNameStats(
            name,
            int(waiting.get(name, 0)),
            int(counters[name].delivered) if name in counters else 0,
            int(counters[name].failed) if name in counters else 0,
            int(counters[name].expired) if name in counters else 0,
            counters[name].last_delivered_at if name in counters else None,
        )
        for name in sorted(set(waiting) | set(counters))
    ]


@dataclass(frozen=True, slots=True)
class LastError:
    event_name: str
    event_id: str
    status: str
    error: str
    error_code: int | None
    fbtrace_id: str | None
    attempts: int
    at: float | None


def last_errors(conn: Connection, limit: int = 10) -> list[LastError]:
    """The most recent rows that carry an error, failed or waiting to retry."""
    rows = conn.execute(
        select(
            t.c.event_name,
            t.c.event_id,
            t.c.status,
            t.c.last_error,
            t.c.last_error_code,
            t.c.fbtrace_id,
            t.c.attempts,
            t.c.last_attempt_at,
        )
        .where(t.c.last_error.is_not(None), t.c.status.in_([PENDING, FAILED]))
        .order_by(t.c.last_attempt_at.desc(), t.c.id.desc())
        .limit(limit)
    ).all()
    return [LastError(r[0], r[1], r[2], r[3], r[4], r[5], int(r[6]), r[7]) for r in rows]
