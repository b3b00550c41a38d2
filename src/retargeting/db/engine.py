"""Engines for the embedded SQLite file and for PostgreSQL, tuned for a write-heavy outbox."""

from __future__ import annotations

import contextlib
import fcntl
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

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


class WriterBusy(Exception):
    """Another writer holds SQLite's write lock, and the caller chose not to wait for it."""


class WriterLock:
    """The queue in front of SQLite's one writer: this process's threads, and other processes.

    SQLite lets one connection write at a time, and a connection that finds the lock taken
    sleeps in SQLite's busy handler in growing steps (up to 100 ms), so the lock sits idle
    between holders. Writers queue here instead: a thread lock for this process's threads and,
    for a database file, an exclusive `flock` on a file beside it for other processes (the
    processes of `serve --processes N`, a separate `worker`). Either wakes the next writer the
    moment the holder is done; the group committer, on the event loop, tries for it without
    waiting instead.
    """

    def __init__(self, lock_path: Path | None) -> None:
        self._thread_lock = threading.Lock()
        self._lock_path = lock_path
        self._file: BinaryIO | None = None

    def acquire(self, blocking: bool = True) -> bool:
        if not self._thread_lock.acquire(blocking=blocking):
            return False
        try:
            if self._lock_path is not None and not self._lock_file(blocking):
                self._thread_lock.release()
                return False
        except BaseException:
            self._thread_lock.release()
            raise
        return True

    def _lock_file(self, blocking: bool) -> bool:
        if self._file is None:
            assert self._lock_path is not None
            self._file = self._lock_path.open("ab")
            weakref.finalize(self, self._file.close)  # closed with the engine's lock
        try:  # blocking, it waits with the GIL released
            fcntl.flock(self._file, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
        self._thread_lock.release()


_WRITER_LOCKS: weakref.WeakKeyDictionary[Engine, WriterLock] = weakref.WeakKeyDictionary()
_WRITER_LOCKS_GUARD = threading.Lock()


def writer_lock(engine: Engine) -> WriterLock:
    """The engine's writer queue (SQLite), one per engine in this process."""
    with _WRITER_LOCKS_GUARD:
        lock = _WRITER_LOCKS.get(engine)
        if lock is None:
            lock = WriterLock(_lock_path(engine))
            _WRITER_LOCKS[engine] = lock
        return lock


def _lock_path(engine: Engine) -> Path | None:
    """A file beside the database, or None for an in-memory one (no other process sees it)."""
    database = engine.url.database
    if not database or database == ":memory:" or engine.url.query.get("mode") == "memory":
        return None
    return Path(f"{database}.writer-lock")


@contextlib.contextmanager
def writing(engine: Engine, *, lock_held: bool = False) -> Iterator[Connection]:
    """`engine.begin()` for the hot writers (ingest, claims, write-backs), queued on SQLite's
    `WriterLock`; PostgreSQL writes concurrently, with no queue.

    `lock_held=True` (SQLite) is for a caller on the event loop that took `writer_lock(engine)`
    itself without waiting: the lock is released at the transaction's end, whatever happens,
    and the transaction does not wait either: if a writer that does not queue (another
    program's connection) holds SQLite's lock, it raises WriterBusy before anything is written.
    """
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            yield conn
        return
    lock = writer_lock(engine)
    if not lock_held:
        lock.acquire()
    try:
        if lock_held:
            with _without_waiting(engine) as conn:
                yield conn
        else:
            with engine.begin() as conn:
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
