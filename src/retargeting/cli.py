"""The `retargeting` command: serve, worker, migrate, and the bootstrap of users, tokens and keys.

Configuration comes from `RETARGETING_*` variables. A mistake the operator can fix (a bad
setting, an unmigrated database, a short password, an unknown email) ends with a one-line
message on stderr and exit code 1, never a traceback. Secrets are printed once, alone on stdout,
so `TOKEN=$(retargeting tokens create ...)` works; everything else goes to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from alembic.util.exc import CommandError
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from retargeting import metrics, runtime
from retargeting.db import migrate as migrations
from retargeting.db.engine import make_engine
from retargeting.security import TokenCipher, UndecryptableSecret
from retargeting.services import credentials, sign_in
from retargeting.settings import ConfigurationError, Settings
from retargeting.snapshot import SnapshotHolder
from retargeting.web.middleware import describe

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s%(fields)s"
_STANDARD_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({})).keys()) | {
    "message",
    "asctime",
    "fields",
    "color_message",  # uvicorn's ANSI-coloured copy of the message
}

app = typer.Typer(
    name="retargeting",
    help="GreetNow retargeting: Conversions API delivery through a durable outbox.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold passwords and tokens
)
users_app = typer.Typer(help="Accounts that may use the admin API.", no_args_is_help=True)
tokens_app = typer.Typer(help="Personal access tokens for the admin API.", no_args_is_help=True)
keys_app = typer.Typer(help="Ingest API keys for the platform's servers.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(keys_app, name="api-keys")


class _FieldsFormatter(logging.Formatter):
    """Appends a record's structured fields (`extra=`) as key=value, so `action` is greppable."""

    def format(self, record: logging.LogRecord) -> str:
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD_RECORD_FIELDS}
        record.fields = "".join(f" {key}={value}" for key, value in extras.items())
        return super().format(record)


def _configure_logging() -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_FieldsFormatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per Graph request is noise


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """Turn the mistakes an operator can fix into one-line messages."""
    try:
        yield
    except credentials.CredentialError as exc:
        _fail(str(exc))
    except (ConfigurationError, UndecryptableSecret, CommandError) as exc:
        _fail(str(exc))
    except SQLAlchemyError as exc:
        _fail(f"database error: {describe(exc)}; is the database reachable and migrated?")


def _settings() -> Settings:
    try:
        settings = Settings()
        make_url(settings.database_url)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        _fail(f"invalid setting RETARGETING_{field.upper()}: {first['msg']}")
    except ArgumentError:
        _fail("RETARGETING_DATABASE_URL is not a database URL (e.g. sqlite:///var/db.sqlite3)")
    return settings


def _safe_url(database_url: str) -> str:
    return make_url(database_url).render_as_string(hide_password=True)


def _engine(settings: Settings) -> Engine:
    return make_engine(settings.database_url, pool_size=1)


def _check_ready(settings: Settings) -> None:
    """Refuse to start on an unsafe configuration or a database not migrated to this release."""
    with _user_errors():
        key = settings.resolve_secret_key()
        current, heads = migrations.revisions(settings.database_url)
    if current != heads:
        at = ", ".join(sorted(current)) or "an empty schema"
        _fail(
            f"the database {_safe_url(settings.database_url)} is at {at}, not at "
            f"{', '.join(sorted(heads))}: run `retargeting migrate` first"
        )
    engine = _engine(settings)
    try:
        with _user_errors():
            SnapshotHolder(engine, TokenCipher(key)).refresh()  # decrypts the stored token
    finally:
        engine.dispose()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Do not deliver here; run `worker` elsewhere.")
    ] = False,
    access_log: Annotated[bool, typer.Option(help="Log every request (costs throughput).")] = True,
    processes: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Processes serving the port, one per core to use: each validates on its own "
            "core; on SQLite they take turns to commit.",
        ),
    ] = 1,
) -> None:
    """Serve the HTTP API; also delivers events unless --no-worker (or EMBEDDED_WORKER=false)."""
    import uvicorn  # imported here: the other commands do not need a server

    from retargeting.web.app import create_app

    settings = _settings()
    _check_ready(settings)
    _configure_logging()
    _announce_setup_link(settings, host, port)
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "access_log": access_log,
        "log_config": None,  # keep the format configured above
        "server_header": False,
    }
    if processes == 1:
        uvicorn.run(create_app(settings, deliver=False if no_worker else None), **options)
        return
    # Each process builds its own app from the environment, and the Prometheus values of all
    # of them are summed from one directory at /metrics.
    from retargeting.web import serving

    if no_worker:
        os.environ["RETARGETING_EMBEDDED_WORKER"] = "false"
    with metrics.shared_across_processes():
        try:
            serving.serve_processes(f"{__name__}:{_app_in_process.__name__}", processes, **options)
        except serving.ServeFailed as exc:
            _fail(f"{exc}; see the log above")


def _app_in_process() -> FastAPI:
    """The app of one of `serve --processes N`, configured from the environment like the parent."""
    from retargeting.web.app import create_app

    _configure_logging()
    return create_app(_settings())


def _announce_setup_link(settings: Settings, host: str, port: int) -> None:
    """While no superadmin exists, print a one-time link that creates the first one."""
    engine = _engine(settings)
    try:
        with _user_errors():
            link = sign_in.issue_setup_link(engine, time.time())
    finally:
        engine.dispose()
    if link is None:
        return
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104 (a comparison)
    url = f"http://{shown_host}:{port}/setup/{link.token}"
    typer.echo(
        f"\nNo superadmin yet. Open this one-time link to create the first one "
        f"(valid 24 hours, until used or until the next start):\n\n    {url}\n",
        err=True,
    )


@app.command()
def worker() -> None:
    """Deliver queued events to Meta until SIGTERM or SIGINT, then stop cleanly."""
    settings = _settings()
    _check_ready(settings)
    _configure_logging()
    with _user_errors():
        asyncio.run(_work(settings))


async def _work(settings: Settings) -> None:
    rt = runtime.build_runtime(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with runtime.running(rt, deliver=True):
        log.info("worker started", extra={"action": "worker_start", "worker_id": rt.worker_id})
        await stop.wait()
        log.info("worker stopping", extra={"action": "worker_stop", "worker_id": rt.worker_id})


@app.command()
def migrate() -> None:
    """Upgrade the database schema to this release's head (safe to run again)."""
    settings = _settings()
    with _user_errors():
        migrations.upgrade(settings.database_url)
        current, _heads = migrations.revisions(settings.database_url)
    typer.echo(f"database {_safe_url(settings.database_url)} is at {', '.join(sorted(current))}")


def _read_password() -> str:
    """A hidden, confirmed prompt on a terminal; the first line of stdin otherwise (scripts)."""
    if sys.stdin.isatty():
        password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        return password
    line = sys.stdin.readline()
    if not line:
        _fail("no password on standard input")
    return line.rstrip("\r\n")


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Option(help="The user's email (their login).")],
    superadmin: Annotated[
        bool, typer.Option("--superadmin", help="May use the admin API.")
    ] = False,
) -> None:
    """Create a user; the password is read from a hidden prompt, or stdin when piped."""
    settings = _settings()
    password = _read_password()
    with _user_errors():
        engine = _engine(settings)
        try:
            user = credentials.create_user(
                engine, email=email, password=password, is_superadmin=superadmin, now=time.time()
            )
        finally:
            engine.dispose()
    role = "superadmin" if user.is_superadmin else "user"
    typer.echo(f"created {role} {user.email} (id {user.id})", err=True)


@tokens_app.command("create")
def tokens_create(
    email: Annotated[str, typer.Option(help="Whose token it is.")],
    name: Annotated[str, typer.Option(help="What the token is for.")] = "cli",
    expires_days: Annotated[
        int | None, typer.Option(min=1, help="Days until it expires (default: never).")
    ] = None,
) -> None:
    """Create a personal access token and print it once."""
    settings = _settings()
    with _user_errors():
        engine = _engine(settings)
        try:
            issued = credentials.create_token(
                engine, email=email, name=name, expires_days=expires_days, now=time.time()
            )
        finally:
            engine.dispose()
    typer.echo(issued.secret)
    typer.echo(f"token {issued.id} created; store it now, it is not shown again", err=True)


@keys_app.command("create")
def api_keys_create(
    name: Annotated[str, typer.Option(help="Which server or environment uses it.")],
) -> None:
    """Create an ingest API key and print it once."""
    settings = _settings()
    with _user_errors():
        engine = _engine(settings)
        try:
            issued = credentials.create_api_key(engine, name=name, now=time.time())
        finally:
            engine.dispose()
    typer.echo(issued.secret)
    typer.echo(f"API key {issued.id} created; store it now, it is not shown again", err=True)


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@keys_app.command("list")
def api_keys_list() -> None:
    """List ingest API keys (names and dates; the keys themselves are not stored)."""
    settings = _settings()
    with _user_errors():
        engine = _engine(settings)
        try:
            keys = credentials.list_api_keys(engine)
        finally:
            engine.dispose()
    if not keys:
        typer.echo("no API keys", err=True)
        return
    typer.echo(f"{'ID':>4}  {'CREATED':<20}  {'STATUS':<28}  NAME")
    for key in keys:
        state = "active" if key.revoked_at is None else f"revoked {_when(key.revoked_at)}"
        typer.echo(f"{key.id:>4}  {_when(key.created_at):<20}  {state:<28}  {key.name}")


@keys_app.command("revoke")
def api_keys_revoke(
    key_id: Annotated[int, typer.Argument(help="The key's ID (see list).")],
) -> None:
    """Revoke an ingest API key; every process refuses it within one settings poll."""
    settings = _settings()
    with _user_errors():
        engine = _engine(settings)
        try:
            credentials.revoke_api_key(engine, key_id=key_id, now=time.time())
        finally:
            engine.dispose()
    typer.echo(f"API key {key_id} revoked", err=True)
