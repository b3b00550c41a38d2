"""The outbox's indexes serve its queries without taxing every enqueue."""

from __future__ import annotations

from sqlalchemy import Engine, delete, select

from retargeting.db import outbox


def test_the_purge_reads_the_finished_rows_index(sqlite_engine: Engine) -> None:
    t = outbox.outbox_events
    finished = (
        select(t.c.id)
        .where(t.c.status != outbox.PENDING, t.c.finished_at < 5.0)
        .limit(10)
        .scalar_subquery()
    )
    compiled = delete(t).where(t.c.id.in_(finished)).compile(dialect=sqlite_engine.dialect)
    with sqlite_engine.connect() as conn:
        plan = conn.exec_driver_sql(
            f"EXPLAIN QUERY PLAN {compiled.string}", tuple(compiled.params.values())
        ).all()
    assert any("ix_outbox_events_finished_at" in str(step[-1]) for step in plan), plan


def test_pending_rows_leave_the_finished_rows_index_alone(sqlite_engine: Engine) -> None:
    """The index is partial: an enqueued row (finished_at NULL) writes no entry into it."""
    with sqlite_engine.connect() as conn:
        [sql] = conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE name = 'ix_outbox_events_finished_at'"
        ).scalars()
    assert "WHERE finished_at IS NOT NULL" in sql
