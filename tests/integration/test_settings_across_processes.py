"""Issue 4: a setting changed in one process is obeyed by every other process within 2 seconds.

Three `retargeting serve --no-worker` web servers and three `retargeting worker` processes share
one database (one SQLite WAL file, or one PostgreSQL database), as a scaled-out deployment would.
The superadmin changes a setting through server #1's API; the other processes learn of it only
through the database. For each of them the test measures the time from the PUT's answer to the
first sign that it obeyed, reports it with `figures`, and holds it to the 2-second requirement.

Servers show obedience in their answers (`events_queued` of a widget view). Workers show it on
the wire: each sends to a Graph stand-in of its own, so the test sees which worker sent when. A
steady trickle of events queued straight into the outbox keeps every worker busy, so a worker
that missed the change would keep sending.
"""

from __future__ import annotations

import itertools
import subprocess
import time
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import Engine, func, select

from retargeting.db.engine import make_engine
from retargeting.db.tables import outbox_events
from tests.factories import (
    ACCESS_TOKEN,
    PIXEL_ID,
    TEST_KEY,
    make_org,
    make_pixel,
    make_superadmin_and_key,
)
from tests.fakes.graph_stand_in import GraphStandIn
from tests.support.busy_workers import ArrivalLog, Trickle
from tests.support.figures import Figures
from tests.support.live_server import live_servers, spawn, stop

PIXEL_API = "/api/v1/platform/retargeting/pixel"
ORGANIZATION_API = "/api/v1/platform/retargeting/organizations"
WIDGET_VIEW_API = "/api/v1/events/widget-view"

PROCESSES = 3  # web servers, and as many workers
OTHER_SERVERS = (1, 2)  # server #1 (index 0) makes the changes
BOUND_SECONDS = 2.0  # the requirement
QUIET_SECONDS = 1.5  # no request for this long, with events pending: the worker stopped
GIVE_UP_SECONDS = 10.0  # a measurement keeps looking this long, so a failure shows the figure
START_TIMEOUT_SECONDS = 60.0  # six processes starting at once on a loaded CI machine
BUSY_SECONDS = 0.3  # before a change, every worker sent a request this recently
ASK_EVERY_SECONDS = 0.02  # widget views while waiting for a server to obey
ORG = "acme"  # the organization the superadmin toggles
STEADY_ORG = "steady"  # the trickle's organization, never toggled


@dataclass
class Cluster:
    admin: httpx.Client  # the superadmin's personal access token, on server #1
    platforms: list[httpx.Client]  # the ingest API key, one client per server
    workers: list[subprocess.Popen[bytes]]
    arrivals: ArrivalLog
    engine: Engine
    _visitors: itertools.count[int] = field(default_factory=itertools.count)

    def widget_view(self, server: int) -> int:
        """A widget view of ORG by a new visitor on one server: how many events it queued."""
        body = {
            "organization_id": ORG,
            "visitor_id": f"visitor-{next(self._visitors)}",
            "page_url": "https://customer.example/pricing",
            "client_ip_address": "203.0.113.7",
            "client_user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
        }
        answer = self.platforms[server].post(WIDGET_VIEW_API, json=body)
        assert answer.status_code == 202, answer.text
        return int(answer.json()["events_queued"])

    def put_pixel(self, *, enabled: bool) -> float:
        """Enable or disable the pixel through server #1; when the answer came."""
        body = {"pixel_id": PIXEL_ID, "test_event_code": "", "enabled": enabled}
        answer = self.admin.put(PIXEL_API, json=body)  # no access_token: keep the stored one
        changed_at = time.monotonic()
        assert answer.status_code == 200, answer.text
        assert answer.json()["state"] == ("active" if enabled else "disabled")
        return changed_at

    def put_retargeting(self, *, enabled: bool) -> float:
        """Switch ORG's retargeting through server #1; when the answer came."""
        answer = self.admin.put(f"{ORGANIZATION_API}/{ORG}", json={"retargeting_enabled": enabled})
        changed_at = time.monotonic()
        assert answer.status_code == 200, answer.text
        assert answer.json()["retargeting_enabled"] is enabled
        return changed_at

    def servers_obey(self, expected: int, since: float) -> dict[str, float | None]:
        """Seconds from `since` until each other server's widget views queue `expected` events."""
        obeyed: dict[int, float] = {}
        while len(obeyed) < len(OTHER_SERVERS) and time.monotonic() - since < GIVE_UP_SECONDS:
            for server in OTHER_SERVERS:
                if server not in obeyed and self.widget_view(server) == expected:
                    obeyed[server] = time.monotonic() - since
            time.sleep(ASK_EVERY_SECONDS)
        return {f"serve #{s + 1}": obeyed.get(s) for s in OTHER_SERVERS}

    def wait_all_sending(self, timeout: float) -> None:
        """Until every worker has sent Meta a request in the last BUSY_SECONDS."""
        started = time.monotonic()
        while True:
            recent = time.monotonic() - BUSY_SECONDS
            if all(self.arrivals.after(w, recent) for w in range(PROCESSES)):
                return
            for number, process in enumerate(self.workers, start=1):
                assert process.poll() is None, f"worker #{number} exited: {process.returncode}"
            assert time.monotonic() - started < timeout, "not every worker is sending to Meta"
            time.sleep(0.02)

    def workers_stop(self, since: float) -> dict[str, float | None]:
        """Seconds from `since` to each worker's last request, once all were quiet QUIET_SECONDS.

        0 for a worker that sent nothing after `since`; None for one still sending at the end.
        """
        while True:
            now = time.monotonic()
            last = [max(self.arrivals.after(w, since), default=since) for w in range(PROCESSES)]
            quiet = [now - t >= QUIET_SECONDS for t in last]
            if all(quiet) or now - since > GIVE_UP_SECONDS:
                return {
                    f"worker #{w + 1}": last[w] - since if quiet[w] else None
                    for w in range(PROCESSES)
                }
            time.sleep(0.05)

    def workers_resume(self, since: float) -> dict[str, float | None]:
        """Seconds from `since` to each worker's first request after it."""
        first: dict[int, float] = {}
        while len(first) < PROCESSES and time.monotonic() - since < GIVE_UP_SECONDS:
            for worker in range(PROCESSES):
                arrivals = self.arrivals.after(worker, since)
                if worker not in first and arrivals:
                    first[worker] = arrivals[0] - since
            time.sleep(0.02)
        return {f"worker #{w + 1}": first.get(w) for w in range(PROCESSES)}

    def pending(self) -> int:
        with self.engine.connect() as conn:
            query = select(func.count()).where(outbox_events.c.status == "pending")
            return int(conn.execute(query).scalar_one())


def report(figures: Figures, change: str, latencies: Mapping[str, float | None]) -> list[str]:
    """Record every figure; return the ones over the bound, for one assertion at the end."""
    late = []
    for who, seconds in latencies.items():
        shown = f"not within {GIVE_UP_SECONDS:.0f} s" if seconds is None else f"{seconds:.3f} s"
        figures.record(f"{change} {who}", shown)
        if seconds is None or seconds >= BOUND_SECONDS:
            late.append(f"{change} {who}: {shown}")
    return late


def test_a_change_in_one_process_is_obeyed_by_every_other_within_2_seconds(
    database_url: str, tmp_path: Path, figures: Figures
) -> None:
    engine = make_engine(database_url)
    try:
        with ExitStack() as stack:
            cluster = start_cluster(stack, engine, database_url, tmp_path)
            measure_org_toggle(cluster, figures)
            measure_pixel_disabled(cluster, figures)
            measure_pixel_enabled(cluster, figures)
            for number, process in enumerate(cluster.workers, start=1):
                assert process.poll() is None, f"worker #{number} exited: {process.returncode}"
    finally:
        engine.dispose()


def start_cluster(stack: ExitStack, engine: Engine, database_url: str, tmp_path: Path) -> Cluster:
    """Superadmin, keys, an active pixel and two organizations; then six processes at once."""
    token, key = make_superadmin_and_key(engine)
    make_org(engine, ORG)
    make_org(engine, STEADY_ORG)
    make_pixel(engine)

    def stand_in() -> GraphStandIn:
        return stack.enter_context(GraphStandIn({ACCESS_TOKEN}, {PIXEL_ID}))

    worker_graphs = [stand_in() for _ in range(PROCESSES)]
    server_graph = stand_in()  # --no-worker servers must never send: checked at the end
    stack.callback(lambda: assert_no_requests(server_graph))
    env = {
        "RETARGETING_ENVIRONMENT": "test",
        "RETARGETING_DATABASE_URL": database_url,
        "RETARGETING_SECRET_KEY": TEST_KEY,
        "RETARGETING_VAR_DIR": str(tmp_path),
        "RETARGETING_LINGER_SECONDS": "0.05",
        "RETARGETING_BATCH_SIZE": "20",  # small batches spread the work over the workers
    }
    workers = [
        spawn(
            ["worker"],
            {**env, "RETARGETING_GRAPH_API_URL": graph.url},
            tmp_path / f"worker-{number}.log",
        )
        for number, graph in enumerate(worker_graphs, start=1)
    ]
    stack.callback(stop, workers)  # after the servers and threads below (reverse order)
    servers = stack.enter_context(
        live_servers(
            {**env, "RETARGETING_GRAPH_API_URL": server_graph.url},
            tmp_path,
            PROCESSES,
            worker=False,
        )
    )
    arrivals = stack.enter_context(ArrivalLog(worker_graphs))
    stack.enter_context(Trickle(engine, STEADY_ORG))

    def client(url: str, secret: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {secret}"}
        return stack.enter_context(httpx.Client(base_url=url, headers=headers, timeout=15))

    cluster = Cluster(
        admin=client(servers[0].url, token),
        platforms=[client(server.url, key) for server in servers],
        workers=workers,
        arrivals=arrivals,
        engine=engine,
    )
    cluster.wait_all_sending(START_TIMEOUT_SECONDS)
    return cluster


def assert_no_requests(graph: GraphStandIn) -> None:
    assert graph.stats()["requests"] == 0, "a --no-worker server sent events to Meta"


def measure_org_toggle(cluster: Cluster, figures: Figures) -> None:
    """The organization's flag is read where events are queued: a server obeys on its next view."""
    assert [cluster.widget_view(server) for server in range(PROCESSES)] == [1, 1, 1]
    changed_at = cluster.put_retargeting(enabled=True)
    late = report(
        figures, "retargeting switched on, obeyed by", cluster.servers_obey(2, changed_at)
    )
    changed_at = cluster.put_retargeting(enabled=False)
    late += report(
        figures, "retargeting switched off, obeyed by", cluster.servers_obey(1, changed_at)
    )
    assert not late, f"not obeyed within {BOUND_SECONDS} s: {late}"


def measure_pixel_disabled(cluster: Cluster, figures: Figures) -> None:
    """Servers stop queuing; every worker, busy up to the change, stops sending and stays quiet."""
    cluster.wait_all_sending(GIVE_UP_SECONDS)
    changed_at = cluster.put_pixel(enabled=False)
    assert cluster.widget_view(0) == 0  # server #1 reloaded its own settings before answering
    servers = cluster.servers_obey(0, changed_at)
    workers = cluster.workers_stop(changed_at)
    pending = cluster.pending()  # the trickle kept queuing: each quiet worker had work waiting
    figures.record("pixel disabled, events pending while every worker was quiet", str(pending))
    late = report(figures, "pixel disabled, obeyed by", servers)
    late += report(figures, "pixel disabled, last request to Meta (after the change) from", workers)
    assert not late, f"not obeyed within {BOUND_SECONDS} s: {late}"
    assert pending > 0


def measure_pixel_enabled(cluster: Cluster, figures: Figures) -> None:
    """Servers queue again; every worker takes up the pending events."""
    changed_at = cluster.put_pixel(enabled=True)
    servers = cluster.servers_obey(1, changed_at)
    workers = cluster.workers_resume(changed_at)
    late = report(figures, "pixel enabled again, obeyed by", servers)
    late += report(figures, "pixel enabled again, first request to Meta from", workers)
    assert not late, f"not obeyed within {BOUND_SECONDS} s: {late}"
