"""Chaos soak: 100,000 interactions through the HTTP API while everything around us fails.

The Graph API stand-in answers a share of requests with 500/502 pages, Meta's JSON 503, stalls
past the client's timeout, the three rate-limit codes and slow successes. Meanwhile the process
that delivers is SIGKILLed three times and started again (SQLite: `retargeting serve` with its
embedded worker, so ingest dies too; PostgreSQL: one of three `retargeting worker` processes
beside a `serve --no-worker`), and the PostgreSQL server is restarted once. A hostile client sends
broken requests the whole time.

At the end the set of (event_name, event_id) Meta received must equal the set the input implies:
nothing missing, nothing extra. Duplicates may only be re-sends after a kill or a restart, and are
counted. `RETARGETING_SOAK_EVENTS` sets the size (`make soak` runs a million).
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url

from retargeting.db.engine import make_engine
from retargeting.db.tables import outbox_events
from tests.factories import ACCESS_TOKEN, PIXEL_ID, make_superadmin_and_key
from tests.fakes.graph_faults import chaos_faults
from tests.fakes.graph_stand_in import GraphStandIn
from tests.support import soak
from tests.support.figures import Figures
from tests.support.live_server import free_port, server_env
from tests.support.postgres import PostgresServer
from tests.support.processes import ServiceProcess

EVENTS = int(os.environ.get("RETARGETING_SOAK_EVENTS", "100000"))
FAULT_RATE = 0.15
MAX_IN_FLIGHT = 8
BATCH_SIZE = 1000
KILL_AT = (0.2, 0.5, 0.8)  # shares of the interactions accepted: ingest and delivery mid-flight
DATABASE_RESTART_AT = 0.65
WORKERS_ON_POSTGRESQL = 3
ADMIN = "/api/v1/platform/retargeting"
SETTLE_SECONDS = 300.0


def latest_retry_at(engine: Engine) -> float:
    with engine.connect() as conn:
        query = select(func.max(outbox_events.c.next_attempt_at)).where(
            outbox_events.c.status == "pending"
        )
        return float(conn.execute(query).scalar_one() or 0.0)


def pending(engine: Engine) -> int:
    with engine.connect() as conn:
        query = select(func.count()).where(outbox_events.c.status == "pending")
        return int(conn.execute(query).scalar_one())


def outbox_by_status(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        query = select(outbox_events.c.status, func.count()).group_by(outbox_events.c.status)
        return {str(status): int(count) for status, count in conn.execute(query)}


@pytest.fixture
def admin_and_key(database_url: str) -> tuple[str, str]:
    engine = make_engine(database_url)
    try:
        return make_superadmin_and_key(engine)
    finally:
        engine.dispose()


def set_up_world(base_url: str, admin_token: str, api_key: str) -> None:
    """Organizations through the platform API, B2B flags and the pixel through the admin API."""
    with (
        httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}) as ingest,
        httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {admin_token}"}
        ) as admin,
    ):
        pixel = {
            "pixel_id": PIXEL_ID,
            "access_token": ACCESS_TOKEN,
            "test_event_code": "",
            "enabled": True,
        }
        answer = admin.put(f"{ADMIN}/pixel", json=pixel)
        assert answer.status_code == 200, answer.text
        for index in range(soak.ORG_COUNT):
            org = soak.org_id(index)
            answer = ingest.put(
                f"/api/v1/organizations/{org}", json={"name": f"Soak {index}", "status": "active"}
            )
            assert answer.status_code == 201, answer.text
            if soak.is_b2b(index):
                answer = admin.put(
                    f"{ADMIN}/organizations/{org}", json={"retargeting_enabled": True}
                )
                assert answer.status_code == 200, answer.text


@pytest.fixture
def quiet_http_clients() -> Iterator[None]:
    """One INFO line per request would be 100,000s of captured log records."""
    logger = logging.getLogger("httpx")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.usefixtures("quiet_http_clients")
def test_chaos_soak_loses_nothing(
    database_url: str,
    admin_and_key: tuple[str, str],
    tmp_path: Path,
    request: pytest.FixtureRequest,
    figures: Figures,
) -> None:
    admin_token, api_key = admin_and_key
    on_postgresql = make_url(database_url).get_backend_name() == "postgresql"
    engine = make_engine(database_url)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    plan = soak.build_plan(EVENTS, run="soak", now=int(time.time()))
    with GraphStandIn({ACCESS_TOKEN}, {PIXEL_ID}, latency_seconds=0.05, keep_events=False) as graph:
        env = server_env(
            database_url,
            tmp_path,
            graph.url,
            RETARGETING_GRAPH_TIMEOUT_SECONDS="1.0",
            RETARGETING_LEASE_SECONDS="4",
            RETARGETING_LINGER_SECONDS="0.05",
            RETARGETING_MAX_IN_FLIGHT=str(MAX_IN_FLIGHT),
            RETARGETING_BATCH_SIZE=str(BATCH_SIZE),
        )
        serve_args = ["serve", "--host", "127.0.0.1", "--port", str(port)]
        if on_postgresql:
            server = ServiceProcess(
                "serve",
                [*serve_args, "--no-worker"],
                env,
                tmp_path,
                url=base_url,
            )
            workers = [
                ServiceProcess(f"worker-{n}", ["worker"], env, tmp_path)
                for n in range(1, WORKERS_ON_POSTGRESQL + 1)
            ]
            victim = workers[0]
        else:
            server = ServiceProcess("serve", serve_args, env, tmp_path, url=base_url)
            workers = []
            victim = server
        processes = [server, *workers]
        for process in processes:
            process.start()
        try:
            server.wait_healthy()
            set_up_world(base_url, admin_token, api_key)
            graph.set_fault_mode(chaos_faults(FAULT_RATE, seed=4, timeout_seconds=2.0))
            clients = soak.IngestClients(base_url, api_key, plan)
            hostile = soak.BadInputClient(base_url, api_key, soak.bad_requests(int(time.time())))
            clients.start()
            hostile.start()
            try:
                database_restarts = run_chaos(
                    clients, plan.interactions, victim, request if on_postgresql else None
                )
                assert clients.join(timeout=600), "the clients could not hand over every event"
            finally:
                clients.stop()
                hostile.stop()
            # Meta recovers once the input is in. Events that failed several times wait out
            # their backoff (it doubles per attempt), so allow for the latest retry scheduled.
            graph.set_fault_mode(None)
            # Cheap polls only: copying the stand-in's set of a million ids every 0.1 s would
            # starve it, its answers would miss the sender's timeout, and Meta would see re-sends.
            soak.wait_until(
                lambda: (
                    pending(engine) == 0 and graph.stats()["events_received"] >= len(plan.expected)
                ),
                SETTLE_SECONDS + max(0.0, latest_retry_at(engine) - time.time()),
                "every event to leave the outbox for Meta",
            )
        finally:
            exit_codes = {process.name: process.stop() for process in processes}
        received = graph.received_ids()
        requests = graph.requests
        violations = graph.violations
    statuses = outbox_by_status(engine)
    engine.dispose()
    elapsed = time.monotonic() - started

    received_keys = set(received)
    missing = plan.expected - received_keys
    extra = received_keys - plan.expected
    duplicates = sum(count - 1 for count in received.values())
    meta_5xx = sum(1 for r in requests if r.status >= 500)
    faults = sum(1 for r in requests if r.fault is not None)
    database = "PostgreSQL" if on_postgresql else "SQLite"
    figures.record(
        f"{database}",
        f"{plan.interactions} interactions sent -> {len(plan.expected)} CAPI events expected, "
        f"{len(received_keys)} received, {len(missing)} missing, {len(extra)} unexpected, "
        f"{duplicates} duplicates (re-sends after kills), "
        f"{victim.kills} SIGKILLs survived, {database_restarts} database restarts, "
        f"{hostile.stats.tried} bad inputs tried (all 4xx: {not hostile.stats.wrong}), "
        f"5xx from our API: {dict(clients.stats.server_errors) or 0}, "
        f"{faults} faults injected by the stand-in ({meta_5xx} of them 5xx) "
        f"over {len(requests)} Graph requests, "
        f"{clients.stats.dropped} ingest requests cut off by kills, {elapsed:.0f} s",
    )

    assert not missing, f"{len(missing)} events never reached Meta, e.g. {sorted(missing)[:3]}"
    assert not extra, f"Meta received events nobody sent, e.g. {sorted(extra)[:3]}"
    assert victim.kills == len(KILL_AT)
    assert not clients.stats.unexpected, clients.stats.unexpected[:5]
    assert (
        500 not in clients.stats.server_errors
    )  # a restart is a 503 with Retry-After, never a 500
    assert not hostile.stats.wrong, hostile.stats.wrong[:5]
    assert hostile.stats.tried >= len(soak.bad_requests(0))
    assert not violations
    # Nothing left behind: every outbox row delivered, none failed, expired or still pending.
    assert set(statuses) == {"delivered"}, statuses
    # A duplicate is an event in flight when its sender died (at most the requests in flight,
    # per kill and per worker on a database restart) or an ingest request cut off mid-answer.
    outages = victim.kills + database_restarts * max(len(workers), 1)
    assert duplicates <= outages * MAX_IN_FLIGHT * BATCH_SIZE + clients.stats.dropped_events
    # Clean shutdowns: uvicorn ends by re-raising the SIGTERM it handled, hence -15 for `serve`.
    assert all(code in (0, -signal.SIGTERM) for code in exit_codes.values()), exit_codes
    for process in processes:
        assert "unhandled error" not in process.log(), process.name


def run_chaos(
    clients: soak.IngestClients,
    interactions: int,
    victim: ServiceProcess,
    request: pytest.FixtureRequest | None,
) -> int:
    """SIGKILL the victim at each KILL_AT share of the input, restart PostgreSQL once mid-way."""
    restarts = 0
    schedule: list[tuple[float, str]] = [(share, "kill") for share in KILL_AT]
    if request is not None:
        schedule.append((DATABASE_RESTART_AT, "restart database"))
    for share, action in sorted(schedule):
        target = share * interactions
        soak.wait_until(
            lambda: clients.stats.accepted_interactions >= target,  # noqa: B023 -- called at once
            600,
            f"{share:.0%} of the interactions to be accepted",
        )
        if action == "kill":
            victim.kill()
            time.sleep(0.3)  # clients meet a refused connection, leases stay with the dead
            victim.start()
            if victim.url:
                victim.wait_healthy()
        else:
            postgres: PostgresServer = request.getfixturevalue("postgres_server")  # type: ignore[union-attr]
            postgres.restart()
            restarts += 1
    return restarts
