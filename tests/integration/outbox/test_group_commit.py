"""Group commit: concurrent requests share transactions, yet each is durable and all-or-none."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import Engine, func, select

from retargeting.db import orgs
from retargeting.db.tables import outbox_events, widget_pageviews
from retargeting.domain.pixel import PixelState
from retargeting.outbox import recording
from retargeting.outbox.group_commit import GroupCommitter
from retargeting.outbox.recording import Recorded, Submission, UnknownOrganizations
from tests.factories import make_interaction, make_org
from tests.support.writer_process import another_process_holding_the_writer, let_go


@contextlib.asynccontextmanager
async def running_committer(
    engine: Engine, on_commit: Callable[[int], None] = lambda size: None
) -> AsyncIterator[GroupCommitter]:
    """A committer whose writer task runs for the block, then is stopped and drained."""
    committer = GroupCommitter(engine, on_commit)
    stop = asyncio.Event()
    writer = asyncio.create_task(committer.run(stop))
    await asyncio.sleep(0)
    try:
        yield committer
    finally:
        stop.set()
        await writer


def count(engine: Engine, table: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


async def test_concurrent_requests_share_commits_and_all_land(engine: Engine) -> None:
    make_org(engine, "org-1", retargeting_enabled=True)
    make_org(engine, "org-2")
    commits: list[int] = []
    async with running_committer(engine, commits.append) as committer:
        results = await asyncio.gather(
            *(
                committer.record(
                    [make_interaction(organization_id=f"org-{1 + n % 2}", visitor_id=f"v-{n}")],
                    PixelState.ACTIVE,
                )
                for n in range(300)
            )
        )
    assert [r.events_queued for r in results] == [2 if n % 2 == 0 else 1 for n in range(300)]
    assert sum(commits) == 300
    assert len(commits) < 300 / 5  # many requests per transaction
    assert count(engine, widget_pageviews) == 300
    assert count(engine, outbox_events) == 450
    with engine.connect() as conn:
        first, second = orgs.get(conn, "org-1"), orgs.get(conn, "org-2")
    assert first is not None
    assert second is not None
    assert (first.pageview_count, second.pageview_count) == (150, 150)


async def test_a_request_arriving_a_loop_turn_later_joins_the_same_commit(engine: Engine) -> None:
    # Under load the next requests are already on the wire: their tasks start a turn or two of
    # the loop after the first, and a commit taken at once would leave each for the next one.
    make_org(engine, "org-1")
    commits: list[int] = []
    async with running_committer(engine, commits.append) as committer:

        async def after(turns: int) -> Recorded:
            for _ in range(turns):
                await asyncio.sleep(0)
            return await committer.record([make_interaction()], PixelState.ACTIVE)

        await asyncio.gather(after(0), after(1))
    assert commits == [2]


async def test_an_unknown_organization_fails_its_request_alone(engine: Engine) -> None:
    make_org(engine, "org-1")
    async with running_committer(engine) as committer:
        good = [
            committer.record([make_interaction(visitor_id=f"v-{n}")], PixelState.ACTIVE)
            for n in range(20)
        ]
        # Both of its interactions or neither: org-1's counter must not move for this one.
        bad = committer.record(
            [make_interaction(visitor_id="bad-1"), make_interaction(organization_id="ghost")],
            PixelState.ACTIVE,
        )
        outcomes = await asyncio.gather(*good, bad, return_exceptions=True)
    assert all(isinstance(o, Recorded) for o in outcomes[:-1])
    assert isinstance(outcomes[-1], UnknownOrganizations)
    assert outcomes[-1].organization_ids == ["ghost"]
    assert count(engine, widget_pageviews) == 20
    with engine.connect() as conn:
        org = orgs.get(conn, "org-1")
    assert org is not None
    assert org.pageview_count == 20


def test_record_many_keeps_each_outcome_in_its_place(engine: Engine) -> None:
    make_org(engine, "org-1")
    outcomes = recording.record_many(
        engine,
        [
            Submission([make_interaction(visitor_id="a")], PixelState.ACTIVE),
            Submission([make_interaction(organization_id="nope")], PixelState.ACTIVE),
            Submission([make_interaction(visitor_id="b")], PixelState.DISABLED),
        ],
        0.0,
    )
    assert isinstance(outcomes[0], Recorded)
    assert outcomes[0].events_queued == 1
    assert isinstance(outcomes[1], UnknownOrganizations)
    assert isinstance(outcomes[2], Recorded)
    assert outcomes[2].events_queued == 0  # counted, but the pixel was off for that caller
    assert count(engine, widget_pageviews) == 2


async def test_waiting_requests_are_committed_before_the_writer_stops(engine: Engine) -> None:
    make_org(engine, "org-1")
    committer = GroupCommitter(engine)
    stop = asyncio.Event()
    writer = asyncio.create_task(committer.run(stop))
    await asyncio.sleep(0)
    pending = [
        asyncio.create_task(
            committer.record([make_interaction(visitor_id=f"v-{n}")], PixelState.ACTIVE)
        )
        for n in range(10)
    ]
    await asyncio.sleep(0)
    stop.set()
    await writer
    assert all(isinstance(task.result(), Recorded) for task in pending)
    assert count(engine, widget_pageviews) == 10


async def test_record_refuses_while_not_running(engine: Engine) -> None:
    with pytest.raises(RuntimeError, match="not running"):
        await GroupCommitter(engine).record([make_interaction()], PixelState.ACTIVE)


async def test_the_event_loop_never_waits_for_a_writer_in_another_process(
    sqlite_engine: Engine,
) -> None:
    """Small groups commit on the loop only when SQLite's writer is free; else on a thread."""
    make_org(sqlite_engine, "org-1")
    other = sqlite3.connect(str(sqlite_engine.url.database), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        async with running_committer(sqlite_engine) as committer:
            request = asyncio.create_task(
                committer.record([make_interaction(visitor_id="v")], PixelState.ACTIVE)
            )
            ticks = 0
            while ticks < 20:  # the loop keeps turning while the request waits for the lock
                await asyncio.sleep(0.01)
                ticks += 1
            assert not request.done()
            other.execute("ROLLBACK")
            recorded = await asyncio.wait_for(request, 10)
    finally:
        other.close()
    assert recorded.interactions == 1
    assert count(sqlite_engine, widget_pageviews) == 1


async def test_a_turn_taken_by_another_serve_process_is_awaited_off_the_loop(
    sqlite_engine: Engine,
) -> None:
    """Another process queued on the writer lock: the loop keeps turning while the request
    waits, and once the turn comes the commit runs on the loop's own thread (no GIL convoy)."""
    make_org(sqlite_engine, "org-1")
    committed_on: list[int] = []
    with another_process_holding_the_writer(sqlite_engine) as holder:
        async with running_committer(
            sqlite_engine, lambda size: committed_on.append(threading.get_ident())
        ) as committer:
            request = asyncio.create_task(
                committer.record([make_interaction(visitor_id="v")], PixelState.ACTIVE)
            )
            for _ in range(20):  # the loop keeps turning while the request waits
                await asyncio.sleep(0.01)
            assert not request.done()
            let_go(holder)
            recorded = await asyncio.wait_for(request, 10)
    assert recorded.interactions == 1
    assert committed_on == [threading.get_ident()]  # the event loop's thread
    assert count(sqlite_engine, widget_pageviews) == 1


async def test_a_group_never_grows_past_the_commit_limit(engine: Engine) -> None:
    make_org(engine, "org-1")
    commits: list[int] = []
    batch = 1000  # the API's largest request
    async with running_committer(engine, commits.append) as committer:
        requests = [
            committer.record(
                [make_interaction(visitor_id=f"v-{r}-{n}") for n in range(batch)],
                PixelState.ACTIVE,
            )
            for r in range(3)
        ]
        await asyncio.gather(*requests)
    assert commits == [2, 1]  # 2,000 interactions at most per transaction
    assert count(engine, widget_pageviews) == 3 * batch


async def test_a_flag_switched_between_commits_decides_the_next_commit(engine: Engine) -> None:
    """The committer chooses a group's events by the flags its last commit read; a flag the
    admin switched since is read again inside the transaction, and wins."""
    make_org(engine, "org-1", retargeting_enabled=True)
    async with running_committer(engine) as committer:
        before = await committer.record([make_interaction(visitor_id="a")], PixelState.ACTIVE)
        with engine.begin() as conn:
            orgs.set_retargeting(conn, "org-1", False, 0.0)
        after = await committer.record([make_interaction(visitor_id="b")], PixelState.ACTIVE)
        with engine.begin() as conn:
            orgs.set_retargeting(conn, "org-1", True, 0.0)
        again = await committer.record([make_interaction(visitor_id="c")], PixelState.ACTIVE)
    assert [before.events_queued, after.events_queued, again.events_queued] == [2, 1, 2]
    assert count(engine, outbox_events) == 5
