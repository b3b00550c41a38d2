"""Settings propagation across processes, and what the idle processes weigh.

Two `retargeting worker` processes and one `retargeting serve --no-worker` share a scratch SQLite
file; this process disables and re-enables the pixel through `pixel_settings.update_pixel`, as
the admin page would from yet another process. Servers show obedience in their answers
(`events_queued` of a widget view); workers show it on the wire, each sending to a stand-in of its
own while a trickle of events keeps them busy. The spec caches settings for 5 minutes.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import Engine

from bench import common
from bench.common import Figure
from retargeting.db.engine import make_engine
from retargeting.services import credentials, organizations
from tests.support.busy_workers import ArrivalLog, Trickle

TITLE = "Settings propagation across processes, and idle memory"
NAME = "settings_memory"
ORG = common.BENCH_ORG
WORKERS = 2
TARGET_SECONDS = 2.0
SPEC_CACHE_SECONDS = 300.0
QUIET_SECONDS = 1.0  # no request for this long, with events pending: the worker has stopped
GIVE_UP_SECONDS = 10.0
START_TIMEOUT_SECONDS = 60.0
BUSY_SECONDS = 0.3  # before each change, every worker sent a request this recently
ASK_EVERY_SECONDS = 0.01  # widget views while waiting for the server to obey
WIDGET_VIEW_API = "/api/v1/events/widget-view"
# Small batches and a short linger make each worker claim often, so the moment it stops shows
# within ~50 ms; the settings poll that propagates changes stays at its default (0.5 s).
WORKER_TUNING = {"RETARGETING_BATCH_SIZE": "20", "RETARGETING_LINGER_SECONDS": "0.05"}

LIMITS = """
**What limits these figures.** Every process polls one row, `settings_revision`, every 0.5 s
(`RETARGETING_SETTINGS_POLL_SECONDS`) and reloads its snapshot when it moved, so a change reaches
a server within one poll interval plus a read: about 0.25 s on average and 0.5 s at worst. A
worker also finishes the requests already in flight when it learns of the change (one 50 ms
round trip to the stand-in here; Meta's latency in production), and a request is counted when
the stand-in answers it, so the worker figures err late by up to that latency. The physical
limit is the poll interval itself; it could be made event-driven (PostgreSQL LISTEN/NOTIFY) but
0.5 s is already 600x under the spec's 5-minute cache. Idle memory is the interpreter plus the
imported stack (SQLAlchemy, httpx, pydantic; and FastAPI, Starlette, Jinja2 and uvicorn for the
server).
"""


def run(quick: bool) -> list[Figure]:
    rounds = 5 if quick else 20
    with contextlib.ExitStack() as stack:
        graphs = [stack.enter_context(common.stand_in()) for _ in range(WORKERS)]
        database_url = stack.enter_context(common.scratch_database())
        log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-settings-")))
        engine = make_engine(database_url)
        stack.callback(engine.dispose)
        api_key = prepare(engine)
        cluster = stack.enter_context(start_cluster(database_url, graphs, log_dir, api_key))
        idle_worker = max(common.peak_rss_mb(w.pid) for w in cluster.workers)
        idle_server = common.peak_rss_mb(cluster.server.pid)
        arrivals = stack.enter_context(ArrivalLog(graphs))
        stack.enter_context(Trickle(engine, ORG))
        server_lag, worker_lag = [], []
        for _ in range(rounds):
            wait_all_sending(arrivals, cluster, GIVE_UP_SECONDS)
            changed_at = common.save_pixel(engine, enabled=False)
            server_lag.append(cluster.server_obeys(0, changed_at))
            worker_lag.append(all_quiet(arrivals, changed_at))
            changed_at = common.save_pixel(engine, enabled=True)
            cluster.server_obeys(1, changed_at)
        busy_worker = max(common.peak_rss_mb(w.pid) for w in cluster.workers)
        busy_server = common.peak_rss_mb(cluster.server.pid)
    return figures(server_lag, worker_lag, (idle_worker, idle_server), (busy_worker, busy_server))


# -- set-up ----------------------------------------------------------------------------------------


def prepare(engine: Engine) -> str:
    """An organization, an active pixel matching the stand-ins, and an ingest API key."""
    now = time.time()
    organizations.upsert(engine, org_id=ORG, name="Bench", status="active", now=now)
    common.save_pixel(engine, enabled=True)
    return credentials.create_api_key(engine, name="bench", now=now).secret


@dataclass
class Cluster:
    server: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]]
    client: httpx.Client  # the server, with the ingest API key
    _visitors: Iterator[int] = field(default_factory=itertools.count)

    def events_queued(self) -> int:
        """A widget view by a new visitor: how many events the server queued for it."""
        body = {
            "organization_id": ORG,
            "visitor_id": f"visitor-{next(self._visitors)}",
            "page_url": "https://customer.example/pricing",
            "client_ip_address": "203.0.113.7",
            "client_user_agent": "Mozilla/5.0 (X11; Linux x86_64) Bench",
        }
        answer = self.client.post(WIDGET_VIEW_API, json=body)
        if answer.status_code != 202:
            raise RuntimeError(f"widget view refused: {answer.status_code} {answer.text}")
        return int(answer.json()["events_queued"])

    def server_obeys(self, expected: int, since: float) -> float:
        """Seconds from `since` until the server's widget views queue `expected` events."""
        while self.events_queued() != expected:
            if time.monotonic() - since > GIVE_UP_SECONDS:
                raise TimeoutError(f"the server did not obey within {GIVE_UP_SECONDS:g} s")
            time.sleep(ASK_EVERY_SECONDS)
        return time.monotonic() - since


@contextlib.contextmanager
def start_cluster(
    database_url: str, graphs: list[common.StandIn], log_dir: Path, api_key: str
) -> Iterator[Cluster]:
    """Two workers (one stand-in each) and a --no-worker server; all stopped afterwards."""
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for number, graph in enumerate(graphs, start=1):
            env = common.service_env(database_url, graph.url, **WORKER_TUNING)
            processes.append(spawn(["worker"], env, log_dir / f"worker-{number}.log"))
        port = free_port()
        # Port 9 (discard) on purpose: a --no-worker server must never send, and cannot here.
        env = common.service_env(database_url, "http://127.0.0.1:9")
        command = ["serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port)]
        server = spawn(command, env, log_dir / "server.log")
        processes.append(server)
        url = f"http://127.0.0.1:{port}"
        common.wait_until(lambda: healthy(url, processes), START_TIMEOUT_SECONDS, "/healthz")
        for number in range(1, WORKERS + 1):
            log = log_dir / f"worker-{number}.log"
            common.wait_until(
                lambda log=log: "worker started" in log.read_text(errors="replace"),
                START_TIMEOUT_SECONDS,
                f"worker #{number} to start",
            )
        headers = {"Authorization": f"Bearer {api_key}"}
        with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
            yield Cluster(server, processes[:WORKERS], client)
    finally:
        common.stop(*processes)


def spawn(arguments: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [common.CLI, *arguments], env=env, stdout=log, stderr=subprocess.STDOUT
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def healthy(url: str, processes: list[subprocess.Popen[bytes]]) -> bool:
    for process in processes:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


# -- observing the workers -------------------------------------------------------------------------


def wait_all_sending(arrivals: ArrivalLog, cluster: Cluster, timeout: float) -> None:
    """Until every worker has sent a request within the last BUSY_SECONDS."""
    started = time.monotonic()
    while not all(arrivals.after(w, time.monotonic() - BUSY_SECONDS) for w in range(WORKERS)):
        for process in cluster.workers:
            if process.poll() is not None:
                raise RuntimeError(f"a worker exited with {process.returncode}")
        if time.monotonic() - started > timeout:
            raise TimeoutError("not every worker is sending")
        time.sleep(0.02)


def all_quiet(arrivals: ArrivalLog, since: float) -> float:
    """Seconds from `since` to the last request of any worker, once all were quiet."""
    while True:
        now = time.monotonic()
        last = [max(arrivals.after(w, since), default=since) for w in range(WORKERS)]
        if all(now - t >= QUIET_SECONDS for t in last):
            return max(last) - since
        if now - since > GIVE_UP_SECONDS:
            raise TimeoutError(f"a worker kept sending for {GIVE_UP_SECONDS:g} s")
        time.sleep(0.02)


# -- figures ---------------------------------------------------------------------------------------


def figures(
    server_lag: list[float],
    worker_lag: list[float],
    idle_rss: tuple[float, float],
    busy_rss: tuple[float, float],
) -> list[Figure]:
    def spread(samples: list[float]) -> str:
        p50, maximum = common.percentile(samples, 0.5), max(samples)
        return f"p50 {p50:.3f} s, max {maximum:.3f} s over {len(samples)} disables"

    def lag(name: str, samples: list[float]) -> Figure:
        p95 = common.percentile(samples, 0.95)
        return Figure(
            NAME,
            name,
            p95,
            "s",
            f"< {TARGET_SECONDS:g}",
            p95 < TARGET_SECONDS,
            f"{spread(samples)}; {SPEC_CACHE_SECONDS / p95:,.0f}x sooner than the spec's "
            f"{SPEC_CACHE_SECONDS:.0f} s cache",
        )

    return [
        lag("pixel disabled elsewhere: serve --no-worker obeys, p95", server_lag),
        lag("pixel disabled elsewhere: last request from either worker, p95", worker_lag),
        Figure(
            NAME,
            "idle worker peak RSS",
            idle_rss[0],
            "MB",
            comparison=f"{busy_rss[0]:.1f} MB after the trickle (batches of 20)",
        ),
        Figure(
            NAME,
            "idle serve --no-worker peak RSS",
            idle_rss[1],
            "MB",
            comparison=f"{busy_rss[1]:.1f} MB after answering the widget views",
        ),
    ]
