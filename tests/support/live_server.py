"""Real `retargeting serve` processes on free ports, for end-to-end and multi-process tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.factories import TEST_KEY
from tests.support import secret_watch

CLI = str(Path(sys.executable).parent / "retargeting")
START_TIMEOUT_SECONDS = 30.0
STOP_GRACE_SECONDS = 15.0


def server_env(database_url: str, var_dir: Path, graph_url: str, **extra: str) -> dict[str, str]:
    """What a test's `retargeting serve` or `worker` needs: its database, the test key, a
    directory of its own and the Graph API stand-in; `extra` adds or overrides settings."""
    return {
        "RETARGETING_ENVIRONMENT": "test",
        "RETARGETING_DATABASE_URL": database_url,
        "RETARGETING_SECRET_KEY": TEST_KEY,
        "RETARGETING_VAR_DIR": str(var_dir),
        "RETARGETING_GRAPH_API_URL": graph_url,
        **extra,
    }


def free_port() -> int:
    [port] = free_ports(1)
    return port


def free_ports(count: int) -> list[int]:
    """Distinct free ports: every socket stays bound until all are chosen."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


@dataclass(frozen=True)
class LiveServer:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def spawn(
    arguments: Sequence[str], env: Mapping[str, str], log_path: Path
) -> subprocess.Popen[bytes]:
    """Start `retargeting <arguments>` with its output in `log_path` (scanned for secrets)."""
    secret_watch.watch_file(log_path)  # scanned for tokens and keys when the session ends
    with log_path.open("wb") as log_file:
        return subprocess.Popen(
            [CLI, *arguments], env={**os.environ, **env}, stdout=log_file, stderr=subprocess.STDOUT
        )


def stop(processes: Sequence[subprocess.Popen[Any]]) -> None:
    """SIGTERM all at once, wait for each, SIGKILL what is still running after the grace."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in processes:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for_health(
    url: str,
    process: subprocess.Popen[bytes],
    log: Callable[[], str],
    timeout: float = START_TIMEOUT_SECONDS,
) -> None:
    """Until `url` + /healthz answers 200; raises with the server's log if it died or hung."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"server did not become healthy:\n{log()}")
        time.sleep(0.05)


def wait_healthy(server: LiveServer, timeout: float = START_TIMEOUT_SECONDS) -> None:
    wait_for_health(server.url, server.process, server.log, timeout)


@contextmanager
def live_servers(
    env: Mapping[str, str], log_dir: Path, count: int, *, worker: bool = True, processes: int = 1
) -> Iterator[list[LiveServer]]:
    """Start `count` servers side by side, wait for each /healthz, SIGTERM them afterwards."""
    servers: list[LiveServer] = []
    try:
        for port in free_ports(count):
            command = ["serve", "--host", "127.0.0.1", "--port", str(port)]
            if not worker:
                command.append("--no-worker")
            if processes > 1:
                command += ["--processes", str(processes)]
            log_path = log_dir / f"server-{port}.log"
            process = spawn(command, env, log_path)
            servers.append(LiveServer(f"http://127.0.0.1:{port}", process, log_path))
        for server in servers:
            wait_healthy(server)
        yield servers
    finally:
        stop([server.process for server in servers])


@contextmanager
def live_server(
    env: Mapping[str, str], log_dir: Path, *, worker: bool = True, processes: int = 1
) -> Iterator[LiveServer]:
    """Start `retargeting serve`, wait for /healthz, stop it with SIGTERM afterwards."""
    with live_servers(env, log_dir, 1, worker=worker, processes=processes) as [server]:
        yield server
