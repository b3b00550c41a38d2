"""What every benchmark shares: figures, the Graph API stand-in process, a scratch database.

Comparisons are ratios measured in the same run against the same stand-in, so that machine
noise cancels out; absolute figures are printed too, with the command that made them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import Engine

from retargeting.db import migrate
from retargeting.domain.events import Interaction
from retargeting.security import TokenCipher
from retargeting.services import pixel_settings
from tests.factories import make_interaction
from tests.support import live_server

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
CLI = str(Path(sys.executable).parent / "retargeting")
TOKEN = "EAAbenchmarktoken0123456789"
PIXEL_ID = "1234567890"
DEFAULT_LATENCY_MS = 50.0


@dataclasses.dataclass(frozen=True, slots=True)
class Figure:
    """One measured number, its target, and how it compares with the design it replaces."""

    benchmark: str
    name: str
    value: float
    unit: str
    target: str = ""  # e.g. ">= 30000"; empty when the figure is context, not a target
    met: bool | None = None
    comparison: str = ""  # e.g. "1,520x the spec's serial sender (19.7 events/s)"

    def line(self) -> str:
        verdict = {True: "met", False: "MISSED", None: ""}[self.met]
        parts = [f"{self.name}: {self.value:,.2f} {self.unit}"]
        if self.target:
            parts.append(f"target {self.target} {self.unit} ({verdict})")
        if self.comparison:
            parts.append(self.comparison)
        return " | ".join(parts)


ROUNDS = 3  # headline throughput and latency figures: the median of this many runs


def median_run(runs: Sequence[T], key: Callable[[T], float]) -> T:
    """The run whose `key` is the median: single runs on this VM move ~15% apart."""
    if not runs:
        raise ValueError("no runs")
    return sorted(runs, key=key)[len(runs) // 2]


def runs_note(values: Iterable[float], unit: str, digits: int = 0) -> str:
    """'median of 3 runs: 28,839 / 33,120 / 36,809 events/s', or '' for a single run."""
    shown = [f"{value:,.{digits}f}" for value in sorted(values)]
    if len(shown) < 2:
        return ""
    return f"median of {len(shown)} runs: {' / '.join(shown)} {unit}"


def at_least(value: float, target: float) -> tuple[str, bool]:
    return f">= {target:,g}", value >= target


def at_most(value: float, target: float) -> tuple[str, bool]:
    return f"<= {target:,g}", value <= target


def percentile(samples: Sequence[float], share: float) -> float:
    """Nearest-rank percentile; `share` in [0, 1]."""
    ordered = sorted(samples)
    if not ordered:
        raise ValueError("no samples")
    # The ceil(share * n)-th smallest; round() first so float error (0.07 * 100 = 7.000000000000001)
    # cannot push the rank up by one.
    rank = math.ceil(round(share * len(ordered), 9))
    index = min(len(ordered) - 1, max(0, rank - 1))
    return ordered[index]


def fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


@dataclasses.dataclass(frozen=True)
class StandIn:
    url: str
    process: subprocess.Popen[str]

    def stats(self) -> dict[str, object]:
        return dict(httpx.get(f"{self.url}/_stand_in/stats", timeout=5).json())

    def events_received(self) -> int:
        return int(str(self.stats()["events_received"]))

    def reset(self) -> None:
        httpx.post(f"{self.url}/_stand_in/reset", timeout=5).raise_for_status()


@contextlib.contextmanager
def stand_in(latency_ms: float = DEFAULT_LATENCY_MS) -> Iterator[StandIn]:
    """The Graph API stand-in in its own process, answering after `latency_ms` like Meta."""
    command = [
        sys.executable,
        "-m",
        "tests.fakes.graph_stand_in",
        "--latency-ms",
        str(latency_ms),
        "--token",
        TOKEN,
        "--pixel",
        PIXEL_ID,
    ]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError("the Graph stand-in did not start")
        yield StandIn(url, process)
    finally:
        stop(process)


@contextlib.contextmanager
def scratch_database() -> Iterator[str]:
    """A migrated SQLite file in a temporary directory, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="retargeting-bench-") as directory:
        url = f"sqlite:///{directory}/bench.sqlite3"
        migrate.upgrade(url)
        yield url


def service_env(database_url: str, graph_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "RETARGETING_ENVIRONMENT": "test",
        "RETARGETING_DATABASE_URL": database_url,
        "RETARGETING_SECRET_KEY": BENCH_SECRET_KEY,
        "RETARGETING_GRAPH_API_URL": graph_url,
        **extra,
    }


def stop(*processes: subprocess.Popen[Any]) -> None:
    """SIGTERM them all, then SIGKILL whatever outlives the grace period."""
    live_server.stop(processes)


BENCH_ORG = "bench-org"


def widget_view(visitor: str, event_time: int) -> Interaction:
    """A valid widget view of the benchmarks' organization (the tests' factory, one org)."""
    return make_interaction(
        organization_id=BENCH_ORG,
        visitor_id=visitor,
        client_user_agent="Mozilla/5.0 (X11; Linux x86_64) Bench",
        event_time=event_time,
    )


def save_pixel(engine: Engine, *, enabled: bool) -> float:
    """Save the pixel (matching the stand-in) as the admin page would; returns when (monotonic)."""
    pixel_settings.update_pixel(
        engine,
        TokenCipher(BENCH_SECRET_KEY),
        actor="bench",
        update=pixel_settings.PixelUpdate(pixel_id=PIXEL_ID, enabled=enabled, access_token=TOKEN),
        now=time.time(),
    )
    return time.monotonic()


def peak_rss_mb(pid: int) -> float:
    """The process's high-water resident set (VmHWM), read while it is still alive."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("VmHWM not found")


def wait_until(condition: object, timeout: float, what: str, poll: float = 0.02) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(poll)


def machine() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with contextlib.suppress(OSError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kib / 1024 / 1024:.1f} GiB"
    return {
        "CPU": f"{os.cpu_count()} cores, {cpu}",
        "memory": memory,
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "SQLite": sqlite3.sqlite_version,
    }


BENCH_SECRET_KEY = fernet_key()
