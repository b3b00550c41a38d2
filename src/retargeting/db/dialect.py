"""What differs between SQLite and PostgreSQL, behind one function each."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Sequence
from itertools import chain
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    CursorResult,
    Dialect,
    Executable,
    Select,
    Table,
    any_,
    bindparam,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError


def insert_or_update(
    conn: Connection, table: Table, values: dict[str, Any], *, key: str, update: dict[str, Any]
) -> None:
    """Insert `values`; on a conflict on `key`, apply `update`.

    `update` values may refer to the proposed row through the `excluded` callable convention:
    pass a function taking the `excluded` namespace to read what the insert proposed.
    """
    builder = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = builder(table).values(values)
    resolved = {
        column: value(stmt.excluded) if callable(value) else value
        for column, value in update.items()
    }
    conn.execute(stmt.on_conflict_do_update(index_elements=[table.c[key]], set_=resolved))


def in_id_list(column: ColumnElement[Any], name: str, dialect_name: str) -> ColumnElement[bool]:
    """`column IN` a list of integers bound as the one parameter `name` (see `id_list`): a
    JSON array that SQLite's json_each reads, an array on PostgreSQL. One parameter, so a
    statement stays the same for any number of ids, compiled once."""
    if dialect_name == "postgresql":
        return column == any_(bindparam(name))
    values: Select[Any] = select(literal_column("value")).select_from(
        func.json_each(bindparam(name))
    )
    return column.in_(values.scalar_subquery())


def id_list(ids: Sequence[int], dialect_name: str) -> Any:
    """The value of an `in_id_list` parameter."""
    return list(ids) if dialect_name == "postgresql" else orjson.dumps(list(ids)).decode()


# Statement sizes: full statements of the first, the remainder in powers of two, so that a
# connection compiles and caches at most eight insert statements per table.
STATEMENT_SIZES = (100, 64, 32, 16, 8, 4, 2, 1)


def insert_many(
    conn: Connection, table: Table, columns: tuple[str, ...], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Positional rows inserted up to 100 per statement, for the ingest hot path.

    SQLAlchemy's per-row parameter processing for `conn.execute(insert(table), dicts)` cost
    about 12 us a row, three times SQLite's own insert; the columns here need no type
    conversion (text, integers, floats), so the rows go to the driver's cursor as they are
    (`on_driver`). Many rows per statement: a driver-level executemany of one row each still
    paid, per row, a statement reset, a turn of Python's sqlite3 loop and a release and retake
    of the GIL (callgrind: a batch event 8% fewer instructions).
    """
    start = 0
    for size in STATEMENT_SIZES:
        count = (len(rows) - start) // size
        if not count:
            continue
        sql = _insert_sql(conn.dialect, table, columns, size)
        parameters = [
            tuple(chain.from_iterable(rows[first : first + size]))
            for first in range(start, start + count * size, size)
        ]
        with on_driver(conn, sql, parameters) as cursor:
            cursor.executemany(sql, parameters)
        start += count * size


@functools.lru_cache(maxsize=64)  # a few tables, eight sizes each
def _insert_sql(dialect: Dialect, table: Table, columns: tuple[str, ...], count: int) -> str:
    placeholders = {"qmark": "?", "format": "%s", "pyformat": "%s"}
    if dialect.paramstyle not in placeholders:
        raise NotImplementedError(f"paramstyle {dialect.paramstyle} is not supported")
    quote = dialect.identifier_preparer.quote
    names = ", ".join(quote(table.c[column].name) for column in columns)
    row = "(" + ", ".join([placeholders[dialect.paramstyle]] * len(columns)) + ")"
    table_name = dialect.identifier_preparer.format_table(table)
    # Identifiers come from our own Table, quoted by the dialect; every value is a bound parameter.
    return f"INSERT INTO {table_name} ({names}) VALUES {', '.join([row] * count)}"  # noqa: S608


def prebuilt_rows(
    conn: Connection, statement: Executable, parameters: dict[str, Any]
) -> list[tuple[Any, ...]]:
    """`execute_prebuilt` on the driver's own cursor, for the statements of every ingest commit:
    SQLAlchemy's execution context and result set-up cost 26 us of a 32 us one-row UPDATE ...
    RETURNING on SQLite, and a commit runs one per organization in it. The worker's claim and
    write-back (two statements per 1,000 events, where that cost does not show) keep
    `execute_prebuilt`, whose statements SQLAlchemy's events see (the plan tests read them)."""
    sql, bound = _bound(conn.dialect, statement, parameters)
    with on_driver(conn, sql, bound) as cursor:
        cursor.execute(sql, bound)
        return list(cursor.fetchall()) if cursor.description else []


@contextlib.contextmanager
def on_driver(conn: Connection, sql: str, parameters: Any) -> Iterator[Any]:
    """A cursor of the connection's driver, inside the connection's transaction.

    The driver's errors come out as SQLAlchemy's (OperationalError, IntegrityError, ...), with
    the parameters hidden as the engines hide them, and a lost connection is invalidated, as
    SQLAlchemy's own execution does: callers catch one family of errors whichever way a
    statement went.
    """
    dbapi_connection = conn.connection.dbapi_connection
    assert dbapi_connection is not None  # a live connection: it is in a transaction
    cursor = dbapi_connection.cursor()
    driver_error = conn.dialect.loaded_dbapi.Error
    try:
        yield cursor
    except driver_error as exc:
        lost = conn.dialect.is_disconnect(exc, dbapi_connection, cursor)
        if lost:
            conn.invalidate(exc)
        raise DBAPIError.instance(
            sql,
            parameters,
            exc,
            driver_error,
            hide_parameters=True,
            connection_invalidated=lost,
            dialect=conn.dialect,
        ) from exc
    finally:
        with contextlib.suppress(Exception):  # an invalidated connection's cursor is closed
            cursor.close()


def execute_prebuilt(
    conn: Connection, statement: Executable, parameters: dict[str, Any]
) -> CursorResult[Any]:
    """Execute a module-level statement through the driver, compiled once per dialect.

    For the few statements that run on every ingest commit or delivery batch: SQLAlchemy
    derives a cache key from the statement's tree on each `execute`, which cost more than
    SQLite's work for one row. The statement's parameters must need no type conversion (text,
    numbers); those not given keep the values the statement was built with (a LIMIT, ...).
    """
    return conn.exec_driver_sql(*_bound(conn.dialect, statement, parameters))


def _bound(dialect: Dialect, statement: Executable, parameters: dict[str, Any]) -> tuple[str, Any]:
    """The statement's SQL for `dialect` and its parameters in the driver's style: by name, or
    in order for a positional one; those not given keep the values the statement was built
    with."""
    sql, order, defaults = _compiled(dialect, statement)
    values = {**defaults, **parameters} if defaults else parameters
    return sql, (values if order is None else tuple(values[name] for name in order))


@functools.lru_cache(maxsize=64)
def _compiled(
    dialect: Dialect, statement: Executable
) -> tuple[str, tuple[str, ...] | None, dict[str, Any]]:
    compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
    order = compiled.positiontup
    # Values the statement was built with (a LIMIT, a status); a bindparam without one must be
    # given at each execution.
    binds = compiled.binds
    defaults = {name: value for name, value in compiled.params.items() if not binds[name].required}
    return (
        compiled.string,
        (tuple(order) if dialect.positional and order is not None else None),
        defaults,
    )
