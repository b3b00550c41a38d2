"""A `retargeting worker` process SIGKILLed mid-batch on PostgreSQL loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from retargeting.db.engine import make_engine
from retargeting.db.tables import outbox_events
from retargeting.domain.pixel import PixelState
from retargeting.outbox import recording
from tests.factories import ACCESS_TOKEN, PIXEL_ID, TEST_KEY, make_interaction, make_org, make_pixel
from tests.fakes.graph_stand_in import GraphStandIn

EVENTS = 5000
CLI = str(Path(sys.executable).parent / "retargeting")


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_sigkilled_worker_mid_batch_loses_nothing(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        run_kill_scenario(engine, database_url)
    finally:
        engine.dispose()


def run_kill_scenario(engine: Engine, database_url: str) -> None:
    make_org(engine, "org-1")
    make_pixel(engine)
    now = int(time.time())
    recording.record(
        engine,
        [make_interaction(visitor_id=f"v-{i}", event_time=now) for i in range(EVENTS)],
        PixelState.ACTIVE,
        time.time(),
    )
    with engine.connect() as conn:
        expected = set(conn.execute(select(outbox_events.c.event_id)).scalars())
    assert len(expected) == EVENTS

    def pending() -> int:
        with engine.connect() as conn:
            query = select(func.count()).where(outbox_events.c.status == "pending")
            return int(conn.execute(query).scalar_one())

    with GraphStandIn({ACCESS_TOKEN}, {PIXEL_ID}, latency_seconds=0.4) as graph:
        env = {
            **os.environ,
            "RETARGETING_ENVIRONMENT": "test",
            "RETARGETING_DATABASE_URL": database_url,
            "RETARGETING_SECRET_KEY": TEST_KEY,
            "RETARGETING_GRAPH_API_URL": graph.url,
            "RETARGETING_GRAPH_TIMEOUT_SECONDS": "5",
            "RETARGETING_LEASE_SECONDS": "2",
            "RETARGETING_MAX_IN_FLIGHT": "2",
        }
        first = subprocess.Popen([CLI, "worker"], env=env)
        try:
            # A batch recorded as delivered means the next ones are in flight: kill it now.
            wait_until(lambda: pending() <= EVENTS - 1000, 30, "the first batch")
            first.send_signal(signal.SIGKILL)
            assert first.wait(10) == -signal.SIGKILL
        finally:
            first.kill()
        left_behind = pending()
        assert 0 < left_behind < EVENTS

        second = subprocess.Popen([CLI, "worker"], env=env)
        try:
            wait_until(lambda: pending() == 0, 60, "the second worker to deliver the rest")
            second.send_signal(signal.SIGTERM)
            assert second.wait(20) == 0
        finally:
            second.kill()

        received = graph.received_ids()
    assert {event_id for _, event_id in received} == expected
    duplicates = sum(count - 1 for count in received.values())
    print(
        f"\nkilled worker: {left_behind} events left pending, {duplicates} re-sent after the kill"
    )
    # At most the batches in flight (2 of 1,000) when the worker died, re-sent with the same ids.
    assert duplicates <= 2000
    with engine.connect() as conn:
        delivered = select(func.count()).where(outbox_events.c.status == "delivered")
        assert conn.execute(delivered).scalar_one() == EVENTS
