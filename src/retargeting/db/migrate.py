"""Runs the Alembic migrations shipped inside the package, so an installed CLI can migrate."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def revisions(database_url: str) -> tuple[frozenset[str], frozenset[str]]:
    """(revisions the database is at, heads this package ships): equal when it is up to date.

    `serve` and `worker` compare them before starting, so a process never runs against a schema
    it does not know.
    """
    heads = frozenset(ScriptDirectory.from_config(alembic_config(database_url)).get_heads())
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            current = frozenset(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()
    return current, heads
