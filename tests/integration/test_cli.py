"""The `retargeting` command against a real database on each engine; servers as real processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from retargeting import security
from retargeting.cli import app
from retargeting.db import auth, migrate
from retargeting.runtime import Runtime
from retargeting.settings import Settings
from retargeting.web.app import create_app
from tests.factories import TEST_KEY, make_org
from tests.support import api_bodies
from tests.support.testclient import TestClient

PASSWORD = "a long enough password"
EMAIL = "admin@greetnow.example"
SCRIPT = Path(sys.executable).parent / "retargeting"
START_TIMEOUT = 20.0


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "RETARGETING_DATABASE_URL": database_url,
        "RETARGETING_VAR_DIR": str(tmp_path),
        "RETARGETING_SECRET_KEY": TEST_KEY,
        "RETARGETING_ENVIRONMENT": "test",
    }


def run(env: dict[str, str], *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env, input=stdin)


def assert_user_error(result: Result, fragment: str) -> None:
    assert result.exit_code == 1, result.output
    assert fragment in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.fixture
def api(env: dict[str, str], tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        database_url=env["RETARGETING_DATABASE_URL"],
        var_dir=tmp_path,
        secret_key=TEST_KEY,
        environment="test",
    )
    with TestClient(create_app(settings, deliver=False)) as client:
        yield client


def test_migrate_brings_a_database_to_head_and_serve_refuses_before(
    env: dict[str, str], database_url: str
) -> None:
    migrate.downgrade(database_url, "base")
    for command in ("serve", "worker"):
        assert_user_error(run(env, command), "run `retargeting migrate` first")
    result = run(env, "migrate")
    assert result.exit_code == 0, result.output
    current, heads = migrate.revisions(database_url)
    assert current == heads
    assert run(env, "migrate").exit_code == 0  # again: nothing to do


def test_a_bad_setting_is_one_line(env: dict[str, str]) -> None:
    result = run({**env, "RETARGETING_BATCH_SIZE": "lots"}, "api-keys", "list")
    assert_user_error(result, "RETARGETING_BATCH_SIZE")


def test_an_unreachable_database_is_one_line(env: dict[str, str]) -> None:
    unreachable = "postgresql+psycopg://nobody:secret-pw@127.0.0.1:1/none"
    result = run({**env, "RETARGETING_DATABASE_URL": unreachable}, "api-keys", "list")
    assert_user_error(result, "database error")
    assert "secret-pw" not in result.output


def test_users_create_reads_the_password_from_stdin(env: dict[str, str], api: TestClient) -> None:
    result = run(
        env,
        "users",
        "create",
        "--email",
        " Admin@GreetNow.example ",
        "--superadmin",
        stdin=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    runtime: Runtime = api.app.state.runtime  # type: ignore[attr-defined]
    with runtime.engine.connect() as conn:
        found = auth.user_by_email(conn, EMAIL)
    assert found is not None
    user, password_hash = found
    assert user.is_superadmin
    assert security.verify_password(password_hash, PASSWORD)


@pytest.mark.parametrize(
    ("stdin", "message"), [("short\n", "at least 12 characters"), ("", "no password")]
)
def test_users_create_refuses_bad_passwords(env: dict[str, str], stdin: str, message: str) -> None:
    assert_user_error(run(env, "users", "create", "--email", EMAIL, stdin=stdin), message)


def test_users_create_refuses_a_duplicate(env: dict[str, str]) -> None:
    assert run(env, "users", "create", "--email", EMAIL, stdin=PASSWORD).exit_code == 0
    result = run(env, "users", "create", "--email", EMAIL.upper(), stdin=PASSWORD)
    assert_user_error(result, "already exists")


def test_a_created_token_authenticates_against_the_api(
    env: dict[str, str], api: TestClient
) -> None:
    run(env, "users", "create", "--email", EMAIL, "--superadmin", stdin=PASSWORD)
    result = run(
        env, "tokens", "create", "--email", EMAIL, "--name", "laptop", "--expires-days", "30"
    )
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert token.startswith(f"{security.PERSONAL_TOKEN_PREFIX}_")
    assert token not in result.stderr  # printed once, on stdout only
    headers = {"Authorization": f"Bearer {token}"}
    assert api.get("/api/v1/platform/retargeting/pixel", headers=headers).status_code == 200


def test_a_token_of_a_plain_user_is_a_403(env: dict[str, str], api: TestClient) -> None:
    run(env, "users", "create", "--email", EMAIL, stdin=PASSWORD)
    token = run(env, "tokens", "create", "--email", EMAIL).stdout.strip()
    response = api.get(
        "/api/v1/platform/retargeting/pixel", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 403


def test_tokens_create_needs_a_known_user(env: dict[str, str]) -> None:
    assert_user_error(run(env, "tokens", "create", "--email", "ghost@example.com"), "no user")


def test_api_keys_create_list_and_revoke(env: dict[str, str], api: TestClient) -> None:
    runtime: Runtime = api.app.state.runtime  # type: ignore[attr-defined]
    make_org(runtime.engine, "org-1")
    created = run(env, "api-keys", "create", "--name", "widget-server")
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert key.startswith(f"{security.API_KEY_PREFIX}_")

    listed = run(env, "api-keys", "list")
    assert listed.exit_code == 0
    assert "widget-server" in listed.stdout
    assert "active" in listed.stdout
    assert key not in listed.output

    runtime.snapshot.refresh()
    headers = {"Authorization": f"Bearer {key}"}
    view = api_bodies.widget_view()
    assert api.post("/api/v1/events/widget-view", json=view, headers=headers).status_code == 202

    key_id = listed.stdout.splitlines()[1].split()[0]
    assert run(env, "api-keys", "revoke", key_id).exit_code == 0
    runtime.snapshot.refresh()
    assert api.post("/api/v1/events/widget-view", json=view, headers=headers).status_code == 401
    assert "revoked" in run(env, "api-keys", "list").stdout
    assert_user_error(run(env, "api-keys", "revoke", key_id), "no active API key")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(SCRIPT), *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    try:
        output, _ = process.communicate(timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"did not stop on SIGTERM:\n{output}")
    return process.returncode, output


def test_serve_answers_and_stops_on_sigterm(env: dict[str, str]) -> None:
    port = _free_port()
    process = _start(env, "serve", "--port", str(port), "--no-worker", "--no-access-log")
    deadline = time.monotonic() + START_TIMEOUT
    status = None
    while time.monotonic() < deadline and process.poll() is None:
        try:
            status = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code
            break
        except httpx.TransportError:
            time.sleep(0.1)
    returncode, output = _stop(process)
    assert status == 200, output
    # uvicorn shuts down gracefully, then re-raises the signal so the exit status tells it
    assert returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    assert "Traceback" not in output


def test_worker_runs_until_sigterm(env: dict[str, str]) -> None:
    process = _start(env, "worker")
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        seen.append(line)
        if "worker started" in line or not line:
            break
    returncode, output = _stop(process)
    assert any("action=worker_start" in line for line in seen), "".join(seen) + output
    assert returncode == 0, output
    assert "action=worker_stop" in output
