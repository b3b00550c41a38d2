"""`retargeting` subprocesses that a test can SIGKILL and start again, logs kept per start."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.support.live_server import STOP_GRACE_SECONDS, spawn, wait_for_health


class ServiceProcess:
    """One service (`serve` or `worker`), restartable with the same command and environment."""

    def __init__(
        self,
        name: str,
        arguments: Sequence[str],
        env: Mapping[str, str],
        log_dir: Path,
        *,
        url: str | None = None,
    ) -> None:
        self.name = name
        self._arguments = list(arguments)
        self._env = dict(env)
        self._log_dir = log_dir
        self.url = url  # a web server's base URL, polled at /healthz
        self._process: subprocess.Popen[bytes] | None = None
        self._logs: list[Path] = []
        self.kills = 0

    def start(self) -> None:
        log_path = self._log_dir / f"{self.name}-{len(self._logs) + 1}.log"
        self._logs.append(log_path)
        self._process = spawn(self._arguments, self._env, log_path)

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """For a web server: until /healthz answers 200. Raises with the log if it died."""
        assert self.url is not None, f"{self.name} is not a web server"
        assert self._process is not None, f"{self.name} was never started"
        wait_for_health(self.url, self._process, self.log, timeout)

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
