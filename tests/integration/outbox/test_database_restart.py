"""Delivery rides out a PostgreSQL restart: nothing lost, nothing stuck, no crash."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import Engine, func, select

from retargeting.db.tables import outbox_events
from retargeting.domain.pixel import PixelState
from retargeting.graph.client import GraphClient
from retargeting.outbox import recording
from retargeting.snapshot import SnapshotHolder
from tests.factories import make_interaction, make_org, make_pixel
from tests.fakes.graph_stand_in import GraphStandIn
from tests.integration.outbox.conftest import build_dispatcher
from tests.support.postgres import PostgresServer

EVENTS = 4000


def delivered(engine: Engine) -> int:
    with engine.connect() as conn:
        query = select(func.count()).where(outbox_events.c.status == "delivered")
        return int(conn.execute(query).scalar_one())


async def wait_for_delivered(engine: Engine, count: int, *, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    for _ in range(int(seconds / 0.05) + 1):
        if await asyncio.to_thread(delivered, engine) >= count:
            return
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {count} events delivered after {seconds} s")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_database_restart_mid_delivery_loses_nothing(
    engine: Engine,
    graph: GraphStandIn,
    graph_client: GraphClient,
    snapshot: SnapshotHolder,
    postgres_server: PostgresServer,
) -> None:
    make_org(engine, "org-1")
    make_pixel(engine)
    snapshot.refresh()
    now = int(time.time())
    recording.record(
        engine,
        [make_interaction(visitor_id=f"v-{i}", event_time=now) for i in range(EVENTS)],
        PixelState.ACTIVE,
        time.time(),
    )
    with engine.connect() as conn:
        expected = set(conn.execute(select(outbox_events.c.event_id)).scalars())
    graph.latency_seconds = 0.1  # a Meta that takes its time, so the restart lands mid-delivery
    dispatcher = build_dispatcher(
        engine,
        graph_client,
        snapshot,
        time.time,  # type: ignore[arg-type]
        batch_size=200,
        max_in_flight=2,
        lease_seconds=3,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        await wait_for_delivered(engine, 400, seconds=30)
        at_restart = await asyncio.to_thread(delivered, engine)
        assert at_restart < EVENTS, "delivery finished before the restart; slow the stand-in"
        await asyncio.to_thread(postgres_server.restart)
        await wait_for_delivered(engine, EVENTS, seconds=60)
        assert not task.done(), "the dispatcher died"
    finally:
        stop.set()
        await task
    assert {event_id for _, event_id in graph.received_ids()} == expected
