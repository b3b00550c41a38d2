"""Driver-level statements of the hot path behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, bindparam, select, update
from sqlalchemy.exc import IntegrityError

from retargeting.db import dialect
from retargeting.db.tables import organizations, widget_pageviews
from tests.factories import make_org

COLUMNS = ("organization_id", "visitor_hash", "page_url", "event_id", "occurred_at", "created_at")


def test_insert_many_writes_positional_rows_in_the_columns_named(engine: Engine) -> None:
    rows = [("org-1", "a" * 64, "https://x.example/?q='1'", f"e-{n}", 1.5, 2.5) for n in range(3)]
    with engine.begin() as conn:
        dialect.insert_many(conn, widget_pageviews, COLUMNS, rows)
        dialect.insert_many(conn, widget_pageviews, COLUMNS, [])  # nothing to do, no error
    with engine.connect() as conn:
        stored = conn.execute(
            select(*(widget_pageviews.c[name] for name in COLUMNS)).order_by(widget_pageviews.c.id)
        ).all()
    assert [tuple(row) for row in stored] == rows


def test_insert_many_keeps_every_row_and_its_order_across_statement_sizes(engine: Engine) -> None:
    # 237 = 2 x 100 + 32 + 4 + 1: full statements, then the remainder in powers of two.
    rows = [
        (f"org-{n % 7}", f"{n:064x}", f"https://x.example/{n}", f"e-{n}", n, 0.5)
        for n in range(237)
    ]
    with engine.begin() as conn:
        dialect.insert_many(conn, widget_pageviews, COLUMNS, rows)
    with engine.connect() as conn:
        stored = conn.execute(
            select(*(widget_pageviews.c[name] for name in COLUMNS)).order_by(widget_pageviews.c.id)
        ).all()
    assert [tuple(row) for row in stored] == rows


# Adds the bound "added" to an organization's pageviews; returns the new count and the flag.
ADD_PAGEVIEWS = (
    update(organizations)
    .where(organizations.c.id == bindparam("org_id"))
    .values(pageview_count=organizations.c.pageview_count + bindparam("added"))
    .returning(organizations.c.pageview_count, organizations.c.greetnow_retargeting_enabled)
)


def test_execute_prebuilt_binds_by_name_and_returns_rows(engine: Engine) -> None:
    make_org(engine, "org-1", retargeting_enabled=True)
    with engine.begin() as conn:
        first = dialect.execute_prebuilt(conn, ADD_PAGEVIEWS, {"added": 2, "org_id": "org-1"}).one()
        again = dialect.execute_prebuilt(conn, ADD_PAGEVIEWS, {"org_id": "org-1", "added": 3}).one()
        unknown = dialect.execute_prebuilt(
            conn, ADD_PAGEVIEWS, {"org_id": "ghost", "added": 1}
        ).all()
    assert (first[0], bool(first[1])) == (2, True)
    assert again[0] == 5
    assert unknown == []


def test_prebuilt_rows_runs_on_the_driver_and_returns_tuples(engine: Engine) -> None:
    make_org(engine, "org-1", retargeting_enabled=True)
    with engine.begin() as conn:
        first = dialect.prebuilt_rows(conn, ADD_PAGEVIEWS, {"org_id": "org-1", "added": 4})
        unknown = dialect.prebuilt_rows(conn, ADD_PAGEVIEWS, {"org_id": "ghost", "added": 1})
    assert [(count, bool(flag)) for count, flag in first] == [(4, True)]
    assert all(type(row) is tuple for row in first)
    assert unknown == []


def test_driver_errors_come_out_as_sqlalchemys_without_the_parameters(engine: Engine) -> None:
    # The same family of errors as SQLAlchemy's own execution, so callers catch one; and the
    # bound values (IP addresses, user agents on the hot path) are not appended to the message.
    # (PostgreSQL's own DETAIL line quotes the failing row; `middleware.describe` logs only
    # the driver message's first line.)
    rows = [(None, "secret-visitor-hash", "https://x.example/", "e-1", 1.5, 2.5)]
    with pytest.raises(IntegrityError) as raised, engine.begin() as conn:
        dialect.insert_many(conn, widget_pageviews, COLUMNS, rows)
    assert "SQL parameters hidden" in str(raised.value)
    assert "INSERT INTO" in str(raised.value)
    with engine.connect() as conn:  # rolled back, and the connection still works
        assert conn.execute(select(widget_pageviews.c.id)).all() == []
