"""The migrations build exactly the schema the code declares, both ways, on both engines."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from retargeting.db import migrate, tables
from retargeting.db.engine import make_engine


def test_models_match_migrations(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, tables.metadata) == []


def test_downgrade_to_empty_and_upgrade_again(database_url: str) -> None:
    migrate.downgrade(database_url, "base")
    engine = make_engine(database_url)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(database_url)
        assert set(inspect(engine).get_table_names()) >= set(tables.metadata.tables)
        current, heads = migrate.revisions(database_url)
        assert current == heads
    finally:
        engine.dispose()
