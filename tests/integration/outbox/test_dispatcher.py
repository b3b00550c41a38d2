"""Delivery against the Graph API stand-in: batching, every fault class, nothing lost."""

from __future__ import annotations

import asyncio
import hashlib
import time

from sqlalchemy import Engine, select, update

from retargeting.db import outbox, settings_store
from retargeting.db.tables import outbox_events
from retargeting.domain.pixel import PixelState
from retargeting.outbox import recording
from retargeting.outbox.dispatcher import Dispatcher
from retargeting.services import pixel_settings
from retargeting.snapshot import SnapshotHolder
from tests.factories import ACCESS_TOKEN, make_cipher, make_interaction, make_org, make_pixel
from tests.fakes.graph_stand_in import Fault, GraphStandIn
from tests.integration.outbox.conftest import MovableClock, build_dispatcher


def queue_widget_views(engine: Engine, count: int, *, org: str = "org-1", start: int = 0) -> None:
    now = int(time.time())
    interactions = [
        make_interaction(organization_id=org, visitor_id=f"v-{start + i}", event_time=now)
        for i in range(count)
    ]
    recording.record(engine, interactions, PixelState.ACTIVE, time.time())


def statuses(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(outbox_events.c.status)).scalars().all()
    counts: dict[str, int] = {}
    for status in rows:
        counts[status] = counts.get(status, 0) + 1
    return counts


def save_new_token(engine: Engine, snapshot: SnapshotHolder, token: str) -> None:
    """What the admin does after a pause: paste a fresh token and save."""
    pixel_settings.update_pixel(
        engine,
        make_cipher(),
        actor="admin@example.com",
        update=pixel_settings.PixelUpdate(
            pixel_id=snapshot.current.pixel.pixel_id, enabled=True, access_token=token
        ),
        now=time.time(),
    )
    snapshot.refresh()


def setup_active(engine: Engine, snapshot: SnapshotHolder) -> None:
    make_org(engine, "org-1")
    make_pixel(engine)
    snapshot.refresh()


async def test_happy_path_delivers_and_drops_personal_data(
    engine: Engine, graph: GraphStandIn, snapshot: SnapshotHolder, dispatcher: Dispatcher
) -> None:
    setup_active(engine, snapshot)
    queue_widget_views(engine, 3)
    await dispatcher.drain()
    assert statuses(engine) == {"delivered": 3}
    assert len(graph.received) == 3
    assert all(count == 1 for count in graph.received_ids().values())
    with engine.connect() as conn:
        rows = conn.execute(select(outbox_events)).all()
    assert all(row.payload is None and row.fbtrace_id for row in rows)
    assert all(row.attempts == 1 for row in rows)
    assert graph.violations == []


async def test_batches_hold_at_most_1000_events(
    engine: Engine, graph: GraphStandIn, snapshot: SnapshotHolder, dispatcher: Dispatcher
) -> None:
    setup_active(engine, snapshot)
    queue_widget_views(engine, 2500)
    await dispatcher.drain()
    assert sorted(r.events for r in graph.requests) == [500, 1000, 1000]
    assert statuses(engine) == {"delivered": 2500}


async def test_transient_failures_retry_with_backoff_then_deliver_once(
    engine: Engine,
    graph: GraphStandIn,
    snapshot: SnapshotHolder,
    dispatcher: Dispatcher,
    clock: MovableClock,
) -> None:
    setup_active(engine, snapshot)
    queue_widget_views(engine, 10)
    graph.enqueue_faults(
        Fault.server_error(500), Fault.timeout(2.0), Fault.server_error(503, json_body=True)
    )
    for expected_attempts in (1, 2, 3):
        await dispatcher.drain()
        with engine.connect() as conn:
            rows = conn.execute(select(outbox_events)).all()
        assert {row.status for row in rows} == {"pending"}
        assert {row.attempts for row in rows} == {expected_attempts}
        assert all(row.last_error for row in rows)
        assert all(row.next_attempt_at > clock.now for row in rows)
        clock.advance(3600)
    await dispatcher.drain()
    assert statuses(engine) == {"delivered": 10}
    assert sorted(graph.received_ids().values()) == [1] * 10


async def test_rate_limit_slows_down_and_retries(
    engine: Engine,
    graph: GraphStandIn,
    snapshot: SnapshotHolder,
    dispatcher: Dispatcher,
    clock: MovableClock,
) -> None:
    setup_active(engine, snapshot)
    queue_widget_views(engine, 5)
    graph.enqueue_faults(Fault.rate_limit(17))
    before = dispatcher.concurrency.limit
    await dispatcher.drain()
    assert dispatcher.concurrency.limit == before // 2
    assert statuses(engine) == {"pending": 5}
    clock.advance(3600)
    await dispatcher.drain()
    assert statuses(engine) == {"delivered": 5}


async def test_invalid_token_pauses_keeps_events_and_resumes_on_new_token(
    engine: Engine,
    graph: GraphStandIn,
    snapshot: SnapshotHolder,
    dispatcher: Dispatcher,
) -> None:
    setup_active(engine, snapshot)
    queue_widget_views(engine, 4)
    graph.set_valid_tokens({"EAAnewtoken-0000000000000000000000"})
    await dispatcher.drain()
    assert statuses(engine) == {"pending": 4}
    pause = snapshot.current.pause
    assert pause is not None
    assert pause.code == 190
    with engine.connect() as conn:
        rows = conn.execute(select(outbox_events)).all()
    assert {row.attempts for row in rows} == {0}
    assert {row.claimed_by for row in rows} == {None}

    save_new_token(engine, snapshot, "EAAnewtoken-0000000000000000000000")
    assert snapshot.current.pause is None
    await dispatcher.drain()
    assert statuses(engine) == {"delivered": 4}


async def test_poison_event_is_isolated_and_the_rest_delivered(
    engine: Engine, graph: GraphStandIn, snapshot: SnapshotHolder, dispatcher: Dispatcher
) -> None:
    setup_active(engine, snapshot)
    queue_widget_views(engine, 1000)
    poison = "GreetNow_WidgetView"
    with engine.connect() as conn:
        bad_hash = conn.execute(
            select(outbox_events.c.event_id).order_by(outbox_events.c.id).offset(617).limit(1)
        ).scalar_one()
    graph.reject_events_where(
        lambda event: event.get("event_id") == bad_hash, message="Invalid parameter: bad email"
    )
    await dispatcher.drain()
    assert statuses(engine) == {"delivered": 999, "failed": 1}
    with engine.connect() as conn:
        failed = conn.execute(select(outbox_events).where(outbox_events.c.status == "failed")).one()
    assert failed.event_id == bad_hash
    assert failed.event_name == poison
    assert failed.last_error_code == 100
    assert "bad email" in failed.last_error
    assert len(graph.received) == 999
    assert len(graph.requests) <= 25  # halving isolates one bad event in about 2*log2(1000)


async def test_events_older_than_seven_days_expire_unsent(
    engine: Engine, graph: GraphStandIn, snapshot: SnapshotHolder, dispatcher: Dispatcher
) -> None:
    setup_active(engine, snapshot)
    queue_widget_views(engine, 2)
    with engine.begin() as conn:
        first = conn.execute(select(outbox_events.c.id).order_by(outbox_events.c.id)).scalar()
        conn.execute(
            update(outbox_events)
            .where(outbox_events.c.id == first)
            .values(event_time=int(time.time()) - 8 * 86400)
        )
    await dispatcher.drain()
    assert statuses(engine) == {"delivered": 1, "expired": 1}
    assert len(graph.received) == 1


async def test_a_dead_workers_lease_expires_and_another_delivers(
    engine: Engine,
    graph: GraphStandIn,
    snapshot: SnapshotHolder,
    graph_client: object,
    clock: MovableClock,
) -> None:
    setup_active(engine, snapshot)
    queue_widget_views(engine, 7)
    with engine.begin() as conn:  # worker A claims, then "dies" before sending
        claimed = outbox.claim(conn, worker_id="dead", now=clock.now, lease_seconds=30, limit=1000)
    assert len(claimed) == 7
    survivor = build_dispatcher(engine, graph_client, snapshot, clock, worker_id="b")  # type: ignore[arg-type]
    await survivor.drain()
    assert statuses(engine) == {"pending": 7}  # still leased to the dead worker
    clock.advance(31)
    await survivor.drain()
    assert statuses(engine) == {"delivered": 7}


async def test_run_loop_sends_a_lone_event_within_a_second(
    engine: Engine, graph: GraphStandIn, snapshot: SnapshotHolder, graph_client: object
) -> None:
    setup_active(engine, snapshot)
    dispatcher = build_dispatcher(
        engine,
        graph_client,
        snapshot,
        time.time,
        linger_seconds=0.2,  # type: ignore[arg-type]
    )
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    await asyncio.sleep(0.3)
    started = time.monotonic()
    queue_widget_views(engine, 1)
    assert await asyncio.to_thread(graph.wait_for, 1, 5.0)
    elapsed = time.monotonic() - started
    stop.set()
    await task
    assert elapsed < 1.0
    assert statuses(engine) == {"delivered": 1}


async def test_run_loop_holds_events_while_pixel_disabled(
    engine: Engine, graph: GraphStandIn, snapshot: SnapshotHolder, graph_client: object
) -> None:
    setup_active(engine, snapshot)
    queue_widget_views(engine, 3)
    make_pixel(engine, enabled=False)
    snapshot.refresh()
    dispatcher = build_dispatcher(engine, graph_client, snapshot, time.time)  # type: ignore[arg-type]
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    await asyncio.sleep(0.5)
    assert graph.received == []
    make_pixel(engine, enabled=True)
    snapshot.refresh()
    assert await asyncio.to_thread(graph.wait_for, 3, 5.0)
    stop.set()
    await task


async def test_maintenance_expires_stale_and_purges_old_rows(
    engine: Engine,
    graph: GraphStandIn,
    snapshot: SnapshotHolder,
    dispatcher: Dispatcher,
    clock: MovableClock,
) -> None:
    setup_active(engine, snapshot)
    queue_widget_views(engine, 3)
    await dispatcher.drain()
    queue_widget_views(engine, 1, start=100)
    with engine.begin() as conn:
        conn.execute(
            update(outbox_events)
            .where(outbox_events.c.status == "pending")
            .values(event_time=int(time.time()) - 8 * 86400)
        )
    assert await dispatcher.maintain_once() == (1, 0)
    clock.advance(31 * 86400)
    _, purged = await dispatcher.maintain_once()
    assert purged == 4
    assert statuses(engine) == {}
    with engine.connect() as conn:
        assert settings_store.read_pause(conn) is None


def test_token_never_stored_in_plaintext(engine: Engine) -> None:
    make_pixel(engine)
    with engine.connect() as conn:
        stored = conn.execute(select(settings_store.platform_settings.c.value)).scalars().all()
    assert stored
    assert all(ACCESS_TOKEN not in value for value in stored)


async def test_delivery_totals_are_counted_and_outlive_the_purge(
    engine: Engine,
    graph: GraphStandIn,
    snapshot: SnapshotHolder,
    dispatcher: Dispatcher,
    clock: MovableClock,
) -> None:
    setup_active(engine, snapshot)
    queue_widget_views(engine, 6)
    bad = hashlib.sha256(b"v-2").hexdigest()
    graph.reject_events_where(lambda event: event["user_data"]["external_id"] == bad)
    await dispatcher.drain()
    with engine.connect() as conn:
        before = {s.event_name: s for s in outbox.stats_by_event_name(conn)}
    stats = before["GreetNow_WidgetView"]
    assert (stats.delivered, stats.failed) == (5, 1)
    assert stats.queued == 0
    assert stats.last_delivered_at is not None
    clock.advance(31 * 86400)
    await dispatcher.maintain_once()
    with engine.connect() as conn:
        after = {s.event_name: s for s in outbox.stats_by_event_name(conn)}
    assert after == before


async def test_every_fault_at_once_loses_nothing_and_delivers_each_event_once(
    engine: Engine,
    graph: GraphStandIn,
    snapshot: SnapshotHolder,
    dispatcher: Dispatcher,
    clock: MovableClock,
) -> None:
    """500s, timeouts, rate limits, an invalid token and a poison event, one after another."""
    setup_active(engine, snapshot)
    queue_widget_views(engine, 3000)
    with engine.connect() as conn:
        expected = set(conn.execute(select(outbox_events.c.event_id)).scalars())
    poison = sorted(expected)[1234]
    graph.reject_events_where(lambda event: event["event_id"] == poison, message="Bad event")
    graph.enqueue_faults(
        Fault.server_error(500),
        Fault.timeout(2.0),
        Fault.rate_limit(613),
        Fault.server_error(502, json_body=True),
        Fault.rate_limit(80004),
        Fault.error(190, message="Error validating access token: Session has expired"),
    )
    for _ in range(20):
        await dispatcher.drain()
        if snapshot.current.pause is not None:
            assert snapshot.current.pause.code == 190
            graph.set_valid_tokens({ACCESS_TOKEN + "-new"})
            save_new_token(engine, snapshot, ACCESS_TOKEN + "-new")
        if statuses(engine).get("pending", 0) == 0:
            break
        clock.advance(3600)
    assert statuses(engine) == {"delivered": 2999, "failed": 1}
    received = graph.received_ids()
    assert {event_id for _, event_id in received} == expected - {poison}
    assert set(received.values()) == {1}  # exactly once per event_id
    with engine.connect() as conn:
        failed = conn.execute(
            select(outbox_events.c.event_id, outbox_events.c.last_error).where(
                outbox_events.c.status == "failed"
            )
        ).one()
    assert failed.event_id == poison
    assert "Bad event" in failed.last_error


async def test_concurrent_workers_never_send_an_event_twice(
    engine: Engine, graph: GraphStandIn, snapshot: SnapshotHolder, graph_client: object
) -> None:
    """Three dispatchers claim side by side (SKIP LOCKED on PostgreSQL): each event goes once."""
    setup_active(engine, snapshot)
    queue_widget_views(engine, 6000)
    # Answers that take Meta's time and two requests in flight each: no worker can take all the
    # batches before the others claim, however busy the machine is.
    graph.latency_seconds = 0.05
    workers = [
        build_dispatcher(
            engine,
            graph_client,  # type: ignore[arg-type]
            snapshot,
            time.time,  # type: ignore[arg-type]
            worker_id=f"w{i}",
            batch_size=250,
            max_in_flight=2,
            linger_seconds=0.01,
        )
        for i in range(3)
    ]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(worker.run(stop)) for worker in workers]
    try:
        assert await asyncio.to_thread(graph.wait_for, 6000, 30.0)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    assert statuses(engine) == {"delivered": 6000}
    assert set(graph.received_ids().values()) == {1}
    with engine.connect() as conn:
        senders = set(conn.execute(select(outbox_events.c.claimed_by)).scalars())
    assert len(senders) > 1  # the work was shared
