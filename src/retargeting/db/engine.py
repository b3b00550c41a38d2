"""Engines for the embedded SQLite file and for PostgreSQL, tuned for a write-heavy outbox."""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

SQLITE_BUSY_TIMEOUT_MS = 10_000
# Pages in the WAL before a commit checkpoints it itself. The process's background checkpoint
# (`checkpoint`, every second in `runtime.running`) normally gets there first, so no request pays
# for a checkpoint's fsync; this is the backstop for processes that do not run it.
SQLITE_AUTOCHECKPOINT_PAGES = 10_000
READ_ONLY = "retargeting_read_only"  # execution option: a SQLite reader that never takes the lock


def make_engine(database_url: str, *, pool_size: int = 10) -> Engine:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(database_url)
    return create_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        hide_parameters=True,  # parameters hold IPs and user agents: keep them out of logs
    )


def _sqlite_engine(database_url: str) -> Engine:
    url = make_url(database_url)
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        database_url, connect_args={"check_same_thread": False}, hide_parameters=True
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, issue BEGIN, so writers can take the lock up front.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_AUTOCHECKPOINT_PAGES}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # BEGIN IMMEDIATE takes the write lock at once, so a transaction that reads and then
        # writes waits for the lock (busy_timeout) instead of failing with SQLITE_BUSY mid-way.
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


_WRITE_LOCKS: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
_WRITE_LOCKS_GUARD = threading.Lock()


class WriterBusy(Exception):
    """Another writer holds SQLite's write lock, and the caller chose not to wait for it."""


@contextlib.contextmanager
def writing(engine: Engine, *, wait: bool = True) -> Iterator[Connection]:
    """`engine.begin()` for the hot writers (ingest, claims, write-backs).

    SQLite has one writer at a time, and a thread that finds the lock taken sleeps in SQLite's
    busy handler in growing steps, so the lock sits idle between holders. The threads of one
    process therefore queue on a Python lock instead, which wakes the next one the moment the
    commit is done. PostgreSQL writes concurrently: no lock there.

    With `wait=False` (SQLite only) it raises WriterBusy at once, before anything is written,
    if a thread of this process or another process holds the write lock: for callers on the
    event loop, which must never sit in SQLite's busy handler.
    """
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            yield conn
        return
    with _WRITE_LOCKS_GUARD:
        lock = _WRITE_LOCKS.setdefault(engine, threading.Lock())
    if not lock.acquire(blocking=wait):
        raise WriterBusy
    try:
        if wait:
            with engine.begin() as conn:
                yield conn
        else:
            with _without_waiting(engine) as conn:
                yield conn
    finally:
        lock.release()


@contextlib.contextmanager
def _without_waiting(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        driver = conn.connection.driver_connection
        assert driver is not None
        driver.execute("PRAGMA busy_timeout=0")
        try:
            try:
                transaction = conn.begin()  # BEGIN IMMEDIATE: fails at once if the lock is held
            except OperationalError as exc:
                raise WriterBusy from exc
            with transaction:
                yield conn
        finally:
            driver.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")


def checkpoint(engine: Engine) -> None:
    """Move the SQLite WAL into the database file without blocking readers or writers."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        # On the driver's connection, outside SQLAlchemy's transaction: a checkpoint inside an
        # open transaction could not pass that transaction's own snapshot.
        driver = conn.connection.driver_connection
        assert driver is not None
        driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
