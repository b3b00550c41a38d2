"""Fixtures shared by every tier: a fresh, migrated database per test on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from retargeting.db import migrate
from retargeting.db.engine import make_engine
from tests.support.postgres import PostgresServer, running_postgres

pytest_plugins = [
    "tests.support.secret_watch",  # no token or key in a response, URL or log
    "tests.support.figures",  # measured figures, printed at the end of the run
]

TEMPLATE_DB = "retargeting_template"
_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        server.psql(f"DROP DATABASE IF EXISTS {TEMPLATE_DB}")
        server.psql(f"CREATE DATABASE {TEMPLATE_DB}")
        migrate.upgrade(server.url(TEMPLATE_DB))
        yield server


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_engine(tmp_path: Path, sqlite_template: Path) -> Iterator[Engine]:
    """For what only SQLite has (its single writer lock): a migrated file of its own."""
    path = tmp_path / "sqlite-only.sqlite3"
    shutil.copyfile(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database of its own for each test, on each engine."""
    if request.param == "sqlite":
        path = tmp_path / "test.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"test_{next(_counter)}"
    server.psql(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}")
    yield server.url(name)
    server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()
