"""The outbox's indexes serve its queries without taxing every enqueue."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event

from retargeting.db import outbox
from retargeting.db.engine import writing


def index_sql(engine: Engine, name: str) -> str:
    with engine.connect() as conn:
        [sql] = conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE name = ?", (name,)
        ).scalars()
    return str(sql)


def outbox_statements_of(
    engine: Engine, call: Callable[[Connection], object]
) -> list[tuple[str, Any]]:
    """The statements on the outbox that `call` sends in a write transaction."""
    with statements_run(engine) as seen, writing(engine) as conn:
        call(conn)
    return [(sql, params) for sql, params in seen if "outbox_events" in sql]


def test_pending_rows_leave_the_finished_rows_index_alone(sqlite_engine: Engine) -> None:
    """The index is partial: an enqueued row (finished_at NULL) writes no entry into it."""
    assert "WHERE finished_at IS NOT NULL" in index_sql(
        sqlite_engine, "ix_outbox_events_finished_at"
    )


@contextlib.contextmanager
def statements_run(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """Every SQL statement the block sends, with its parameters."""
    seen: list[tuple[str, Any]] = []

    def capture(_conn: object, _cursor: object, sql: str, params: Any, *_: object) -> None:
        seen.append((sql, params))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", capture)


def plan_of(engine: Engine, sql: str, params: Any) -> list[str]:
    with engine.connect() as conn:
        steps = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params).all()
    return [str(step[-1]) for step in steps]


READERS_OF_PENDING_ROWS: dict[str, Callable[[Connection], object]] = {
    "claim": lambda conn: outbox.claim(
        conn, worker_id="w", now=time.time(), lease_seconds=60, limit=1000
    ),
    "depth": outbox.depth,
    "stats_by_event_name": outbox.stats_by_event_name,
    "expire_stale": lambda conn: outbox.expire_stale(
        conn, older_than_event_time=0, now=time.time()
    ),
}


@pytest.mark.parametrize("reader", sorted(READERS_OF_PENDING_ROWS))
def test_what_reads_pending_rows_reads_the_due_index(sqlite_engine: Engine, reader: str) -> None:
    """The due index is partial (pending rows only): a query can use it only if the planner
    can prove `status = 'pending'` from its WHERE, else it reads every row ever queued."""
    outbox_statements = outbox_statements_of(sqlite_engine, READERS_OF_PENDING_ROWS[reader])
    assert outbox_statements
    for sql, params in outbox_statements:
        plan = plan_of(sqlite_engine, sql, params)
        assert any("USING INDEX ix_outbox_events_due" in step for step in plan), (sql, plan)
        assert "SCAN outbox_events" not in plan, (sql, plan)  # the whole table, no index


def test_a_delivered_row_leaves_the_due_index(sqlite_engine: Engine) -> None:
    assert "WHERE status = 'pending'" in index_sql(sqlite_engine, "ix_outbox_events_due")


def test_the_purge_reads_the_finished_rows_index(sqlite_engine: Engine) -> None:
    [(sql, params)] = outbox_statements_of(
        sqlite_engine, lambda conn: outbox.purge_finished(conn, finished_before=5.0)
    )
    plan = plan_of(sqlite_engine, sql, params)
    assert any("ix_outbox_events_finished_at" in step for step in plan), (sql, plan)
