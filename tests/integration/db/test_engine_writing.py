"""The SQLite writer lock: threads and processes queue on it; an event-loop caller that took it
without waiting never waits inside SQLite either."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from retargeting.db.engine import SQLITE_BUSY_TIMEOUT_MS, WriterBusy, writer_lock, writing
from tests.support.writer_process import another_process_holding_the_writer, let_go


@contextlib.contextmanager
def another_process_writing(engine: Engine) -> Iterator[None]:
    """What another process's open write transaction looks like to this one: a held lock."""
    other = sqlite3.connect(str(engine.url.database), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield
        other.execute("ROLLBACK")
    finally:
        other.close()


def test_without_waiting_it_writes_when_the_writer_is_free(sqlite_engine: Engine) -> None:
    assert writer_lock(sqlite_engine).acquire(blocking=False)
    with writing(sqlite_engine, lock_held=True) as conn:
        conn.execute(text("UPDATE settings_revision SET revision = revision"))
        busy_timeout = conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one()
    assert busy_timeout == 0  # inside: a held lock would have failed BEGIN at once


def test_a_thread_of_this_process_writing_keeps_the_lock_from_others(sqlite_engine: Engine) -> None:
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with writing(sqlite_engine):
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        assert not writer_lock(sqlite_engine).acquire(blocking=False)
    finally:
        release.set()
        holder.join()


def test_a_writer_that_does_not_queue_makes_it_refuse_at_once(sqlite_engine: Engine) -> None:
    # Waiting would sit in SQLite's busy handler for SQLITE_BUSY_TIMEOUT_MS and then fail with
    # OperationalError; refusing raises WriterBusy before the body runs.
    assert writer_lock(sqlite_engine).acquire(blocking=False)  # it does not queue there
    with (
        another_process_writing(sqlite_engine),
        pytest.raises(WriterBusy),
        writing(sqlite_engine, lock_held=True),
    ):
        pytest.fail("the body must not run while another process writes")
    assert writer_lock(sqlite_engine).acquire(blocking=False)  # given back on refusal
    writer_lock(sqlite_engine).release()
    with sqlite_engine.connect() as conn:  # the pooled connection waits again for others
        busy_timeout = conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one()
    assert busy_timeout == SQLITE_BUSY_TIMEOUT_MS


def test_waiting_writers_queue_behind_the_holder(sqlite_engine: Engine) -> None:
    order: list[str] = []
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with writing(sqlite_engine):
            holding.set()
            release.wait(10)
            order.append("holder")

    def wait_then_write() -> None:
        with writing(sqlite_engine) as conn:
            conn.execute(text("UPDATE settings_revision SET revision = revision"))
            order.append("waiter")

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    waiter = threading.Thread(target=wait_then_write)
    waiter.start()
    release.set()
    holder.join()
    waiter.join()
    assert order == ["holder", "waiter"]


def test_writers_of_other_processes_queue_on_the_writer_lock(sqlite_engine: Engine) -> None:
    """No SQLite busy handler between processes: the next writer goes the moment it is free."""
    with another_process_holding_the_writer(sqlite_engine) as holder:
        assert not writer_lock(sqlite_engine).acquire(blocking=False)
        written = threading.Event()

        def write() -> None:
            with writing(sqlite_engine) as conn:
                conn.execute(text("UPDATE settings_revision SET revision = revision + 1"))
            written.set()

        writer = threading.Thread(target=write)
        writer.start()
        assert not written.wait(0.3)  # queued behind the other process
        let_go(holder)
        assert written.wait(10)
        writer.join()


def test_a_lock_taken_by_the_caller_is_released_by_writing(sqlite_engine: Engine) -> None:
    lock = writer_lock(sqlite_engine)
    assert lock.acquire(blocking=False)
    with writing(sqlite_engine, lock_held=True) as conn:
        conn.execute(text("UPDATE settings_revision SET revision = revision + 1"))
    assert lock.acquire(blocking=False)  # released: free again
    with pytest.raises(RuntimeError), writing(sqlite_engine, lock_held=True):
        raise RuntimeError("the transaction fails")
    assert lock.acquire(blocking=False)  # released on failure too
    lock.release()
