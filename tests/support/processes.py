"""`retargeting` subprocesses that a test can SIGKILL and start again, logs kept per start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from tests.support import secret_watch

CLI = str(Path(sys.executable).parent / "retargeting")
STOP_GRACE_SECONDS = 20.0


class ServiceProcess:
    """One service (`serve` or `worker`), restartable with the same command and environment."""

    def __init__(
        self,
        name: str,
        arguments: Sequence[str],
        env: Mapping[str, str],
        log_dir: Path,
        *,
        health_url: str | None = None,
    ) -> None:
        self.name = name
        self._command = [CLI, *arguments]
        self._env = {**os.environ, **env}
        self._log_dir = log_dir
        self.health_url = health_url
        self._process: subprocess.Popen[bytes] | None = None
        self._logs: list[Path] = []
        self.kills = 0

    def start(self) -> None:
        log_path = self._log_dir / f"{self.name}-{len(self._logs) + 1}.log"
        secret_watch.watch_file(log_path)  # scanned for tokens and keys when the session ends
        self._logs.append(log_path)
        with log_path.open("wb") as log_file:
            self._process = subprocess.Popen(
                self._command, env=self._env, stdout=log_file, stderr=subprocess.STDOUT
            )

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """For a web server: until /healthz answers 200. Raises with the log if it died."""
        assert self.health_url is not None, f"{self.name} has no health URL"
        deadline = time.monotonic() + timeout
        while True:
            if self._process is None or self._process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log()}")
            try:
                if httpx.get(self.health_url, timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not become healthy:\n{self.log()}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, in-flight work is simply cut off."""
        assert self._process is not None, f"{self.name} was never started"
        assert self._process.poll() is None, f"{self.name} is already down"
        self._process.send_signal(signal.SIGKILL)
        assert self._process.wait(10) == -signal.SIGKILL
        self.kills += 1

    def stop(self) -> int | None:
        """SIGTERM and wait; the exit code, or None if it had to be killed."""
        process = self._process
        if process is None or process.poll() is not None:
            return process.returncode if process is not None else None
        process.terminate()
        try:
            return process.wait(STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return None

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log(self) -> str:
        return "".join(path.read_text(errors="replace") for path in self._logs if path.exists())
