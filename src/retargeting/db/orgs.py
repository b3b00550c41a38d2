"""Organizations: upserts from the platform, the retargeting flag, and the paginated admin list."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, case, func, select, update

from retargeting.db import dialect
from retargeting.db.tables import organizations


@dataclass(frozen=True, slots=True)
class Organization:
    id: str
    name: str
    status: str
    retargeting_enabled: bool
    pageview_count: int
    call_count: int


class SortKey(enum.StrEnum):
    NAME = "name"
    STATUS = "status"
    PAGEVIEWS = "pageviews"
    CALLS = "calls"
    RETARGETING = "retargeting"


_SORT_COLUMNS = {
    SortKey.NAME: organizations.c.name,
    SortKey.STATUS: organizations.c.status,
    SortKey.PAGEVIEWS: organizations.c.pageview_count,
    SortKey.CALLS: organizations.c.call_count,
    SortKey.RETARGETING: organizations.c.greetnow_retargeting_enabled,
}

_COLUMNS = (
    organizations.c.id,
    organizations.c.name,
    organizations.c.status,
    organizations.c.greetnow_retargeting_enabled,
    organizations.c.pageview_count,
    organizations.c.call_count,
)


def _from_row(row: tuple[str, str, str, bool, int, int]) -> Organization:
    return Organization(row[0], row[1], row[2], bool(row[3]), int(row[4]), int(row[5]))


def upsert(conn: Connection, org_id: str, name: str, status: str, now: float) -> bool:
    """Insert or update name and status; the retargeting flag and counters are never touched.

    Returns whether the organization is new.
    """
    existed = get(conn, org_id) is not None
    dialect.insert_or_update(
        conn,
        organizations,
        {
            "id": org_id,
            "name": name,
            "name_folded": name.casefold(),
            "status": status,
            "created_at": now,
            "updated_at": now,
        },
        key="id",
        update={"name": name, "name_folded": name.casefold(), "status": status, "updated_at": now},
    )
    return not existed


def get(conn: Connection, org_id: str) -> Organization | None:
    row = conn.execute(select(*_COLUMNS).where(organizations.c.id == org_id)).first()
    return None if row is None else _from_row(tuple(row))


def set_retargeting(conn: Connection, org_id: str, enabled: bool, now: float) -> None:
    conn.execute(
        update(organizations)
        .where(organizations.c.id == org_id)
        .values(greetnow_retargeting_enabled=enabled, updated_at=now)
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def page(
    conn: Connection,
    *,
    search: str = "",
    enabled_only: bool = False,
    sort: SortKey = SortKey.NAME,
    descending: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Organization], int]:
    """One page of the admin list and the total matching, filtered and sorted in SQL."""
    conditions = []
    if search:
        pattern = f"%{_escape_like(search.casefold())}%"
        conditions.append(organizations.c.name_folded.like(pattern, escape="\\"))
    if enabled_only:
        conditions.append(organizations.c.greetnow_retargeting_enabled.is_(True))
    column = _SORT_COLUMNS[sort]
    order = column.desc() if descending else column.asc()
    rows = conn.execute(
        select(*_COLUMNS)
        .where(*conditions)
        .order_by(order, organizations.c.id.asc())
        .limit(limit)
        .offset(offset)
    ).all()
    total = conn.execute(select(func.count()).select_from(organizations).where(*conditions))
    return [_from_row(tuple(row)) for row in rows], int(total.scalar_one())


def counts(conn: Connection) -> tuple[int, int]:
    """(organizations with retargeting enabled, all organizations) for the summary card."""
    flag = organizations.c.greetnow_retargeting_enabled
    enabled = func.coalesce(func.sum(case((flag.is_(True), 1), else_=0)), 0)
    row = conn.execute(select(enabled, func.count())).one()
    return int(row[0]), int(row[1])


def add_counts_returning_flags(
    conn: Connection, increments: dict[str, tuple[int, int]]
) -> dict[str, bool]:
    """Add pageviews and calls per organization and read back each one's retargeting flag.

    The counter update doubles as the existence check and reads the flag in the same statement,
    so the hot path needs no separate query and never sees a stale flag. Rows are updated in id
    order so concurrent batches cannot deadlock. Unknown ids are absent from the result.
    """
    flags: dict[str, bool] = {}
    for org_id in sorted(increments):
        pageviews, calls = increments[org_id]
        rows = dialect.prebuilt_rows(
            conn, _ADD_COUNTS, {"org_id": org_id, "pageviews": pageviews, "calls": calls}
        )
        if rows:
            flags[org_id] = bool(rows[0][0])
    return flags


# Built once: the hot path runs it per request, and building it costs more than executing it.
_ADD_COUNTS = (
    update(organizations)
    .where(organizations.c.id == bindparam("org_id"))
    .values(
        pageview_count=organizations.c.pageview_count + bindparam("pageviews"),
        call_count=organizations.c.call_count + bindparam("calls"),
    )
    .returning(organizations.c.greetnow_retargeting_enabled)
)
