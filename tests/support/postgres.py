"""A throwaway PostgreSQL server for the test run, started from the machine's binaries.

Each test gets its own database, cloned from a template migrated once (CREATE DATABASE ...
TEMPLATE takes milliseconds, running the migrations each time would take a second).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg_bin() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    if not candidates:
        raise RuntimeError(
            "PostgreSQL server binaries not found under /usr/lib/postgresql; "
            "run `make test` (it installs Debian's postgresql) or apt-get install postgresql"
        )
    return candidates[-1]


def _as_postgres(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    data_dir: Path

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@{self.host}:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> None:
        subprocess.run(
            [
                str(_pg_bin() / "psql"),
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-q",
                "-c",
                sql,
            ],
            check=True,
            capture_output=True,
        )

    def pg_ctl(self, *args: str) -> None:
        subprocess.run(
            _as_postgres([str(_pg_bin() / "pg_ctl"), "-D", str(self.data_dir), *args]),
            check=True,
            capture_output=True,
        )

    def restart(self) -> None:
        # -l: the restarted postmaster must not inherit our pipes, or run() waits on it forever.
        self.pg_ctl(
            "-m", "fast", "-w", "-t", "30", "-l", str(self.data_dir / "server.log"), "restart"
        )


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    external = os.environ.get("RETARGETING_TEST_POSTGRES")
    if external:  # host:port of a server the caller runs, trust auth for postgres
        host, port_text = external.rsplit(":", 1)
        yield PostgresServer(host, int(port_text), Path("/nonexistent"))
        return
    pg_bin = _pg_bin()
    data_dir = Path(tempfile.mkdtemp(prefix="retargeting-pg-"))
    if os.geteuid() == 0:
        shutil.chown(data_dir, "postgres", "postgres")
    data_dir.chmod(0o700)
    port = _free_port()
    subprocess.run(
        _as_postgres(
            [
                str(pg_bin / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ]
        ),
        check=True,
        capture_output=True,
    )
    options = (
        f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={data_dir} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    server = PostgresServer("127.0.0.1", port, data_dir)
    server.pg_ctl("-l", str(data_dir / "server.log"), "-w", "-t", "30", "-o", options, "start")
    try:
        yield server
    finally:
        try:
            server.pg_ctl("-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)
