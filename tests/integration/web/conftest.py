"""An app per test on its own database (SQLite and PostgreSQL), with credentials ready to use."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from retargeting.runtime import Runtime
from retargeting.services import credentials
from retargeting.settings import Settings
from retargeting.web.app import create_app
from tests.factories import TEST_KEY
from tests.support.testclient import TestClient

SUPERADMIN_EMAIL = "admin@greetnow.example"
USER_EMAIL = "agent@greetnow.example"
PASSWORD = "correct horse battery staple"


NO_GRAPH_API = "http://127.0.0.1:9"  # the discard port: refused at once, never Meta itself


def web_settings(database_url: str, var_dir: Path, **overrides: object) -> Settings:
    """Settings for an app under test; the Graph API is unreachable unless a test passes one."""
    values: dict[str, object] = {
        "database_url": database_url,
        "var_dir": var_dir,
        "secret_key": TEST_KEY,
        "environment": "test",
        "graph_api_url": NO_GRAPH_API,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return web_settings(database_url, tmp_path)


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings, deliver=False)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:  # runs the lifespan: runtime built, snapshot loaded
        yield test_client


@pytest.fixture
def runtime(client: TestClient, app: FastAPI) -> Runtime:
    rt: Runtime = app.state.runtime
    return rt


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def make_token(runtime: Runtime, email: str, *, superadmin: bool) -> str:
    credentials.create_user(
        runtime.engine, email=email, password=PASSWORD, is_superadmin=superadmin, now=time.time()
    )
    issued = credentials.create_token(
        runtime.engine, email=email, name="tests", expires_days=None, now=time.time()
    )
    return issued.secret


@pytest.fixture
def superadmin_token(runtime: Runtime) -> str:
    return make_token(runtime, SUPERADMIN_EMAIL, superadmin=True)


@pytest.fixture
def admin(superadmin_token: str) -> dict[str, str]:
    """Headers of a superadmin's request."""
    return bearer(superadmin_token)


@pytest.fixture
def user_token(runtime: Runtime) -> str:
    """A valid token of a user who is not a superadmin."""
    return make_token(runtime, USER_EMAIL, superadmin=False)


@pytest.fixture
def ingest_key(runtime: Runtime) -> str:
    issued = credentials.create_api_key(runtime.engine, name="platform", now=time.time())
    runtime.snapshot.refresh()  # the poll would pick it up within 0.5 s; tests do not wait
    return issued.secret


@pytest.fixture
def ingest(ingest_key: str) -> dict[str, str]:
    """Headers of a platform server's request."""
    return bearer(ingest_key)
