"""What differs between SQLite and PostgreSQL, behind one function each."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


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
