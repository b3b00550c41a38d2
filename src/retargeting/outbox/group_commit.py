"""Group commit for the ingest API: the requests that arrive while one transaction commits share
the next one.

A commit costs far more than the rows in it (on SQLite it is the WAL append and the lock hand-off;
on PostgreSQL a network round trip and a WAL flush). Each request still waits for the commit that
holds its rows, so an accepted event is durable, but under load one commit answers dozens of
requests. With one request at a time it commits at once: nothing lingers, so an idle server
answers as fast as before (it waits two turns of the loop, for requests already on the wire).

Where the commit runs: on SQLite, right on the event loop whenever the writer is free. A few rows
take SQLite a fraction of a millisecond, less than handing them to a thread and back (two
wake-ups and the GIL passed to and fro were most of serve's CPU under a steady trickle of single
events); and a thread does not let the loop work meanwhile anyway: Python's sqlite3 releases the
GIL around every row it steps, and each time the writer wants it back while the loop validates
the next request it waits for the interpreter's switch interval (a GIL convoy), so 1,000-event
batches went faster inline (about 30,000 events/s against 24,000, alternating runs). Groups stay
under MAX_INTERACTIONS_PER_COMMIT, which bounds how long the loop is held (about 20 ms), and the
committer yields to the loop after each. It runs in the committer's own task, never in a
request's: the requests that arrive while the loop serves others are what a group is made of
(committing in each request's coroutine halved the saturated rate: every commit held one
request). When the writer is taken (another serve process, a worker, the dispatcher's thread),
the loop goes on serving and tries for the turn again every half millisecond
(`db.engine.WriterLock`), and the commit still runs here once it comes: the loop never waits on
a lock, never meets the convoy, and holds the lock only while it writes.
PostgreSQL (a network round trip) commits on a worker thread.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import time
from collections.abc import Callable, Sequence

from sqlalchemy import Engine

from retargeting.db.engine import WriterBusy, WriterLock, writer_lock
from retargeting.domain.events import Interaction
from retargeting.domain.pixel import PixelState
from retargeting.outbox import recording
from retargeting.outbox.recording import Recorded, Submission, UnknownOrganizations

# Two full batch requests: keeps each transaction, one lock hold and one hold of the loop short.
MAX_INTERACTIONS_PER_COMMIT = 2000
# Turns of the event loop a commit waits for requests already on the wire (`_let_arrivals_join`).
ARRIVAL_TURNS = 2
# How often a process whose writer is taken tries again: a flock() call each, against a commit of
# a few milliseconds at the rates where the writer is contended.
TURN_POLL_SECONDS = 0.0005

Outcomes = list[Recorded | UnknownOrganizations]


@dataclasses.dataclass(slots=True)
class _Waiting:
    submission: Submission
    answer: asyncio.Future[Recorded]


class GroupCommitter:
    """One writer task per process; `record` is what the ingest handlers await."""

    def __init__(
        self, engine: Engine, on_commit: Callable[[int], None] = lambda size: None
    ) -> None:
        self._engine = engine
        self._inline = engine.dialect.name == "sqlite"
        self._on_commit = on_commit  # told how many requests each commit answered (metrics)
        self._waiting: collections.deque[_Waiting] = collections.deque()
        self._wakeup: asyncio.Event | None = None
        # The B2B flags the last commits read: each group's events are chosen by them before
        # the writer lock is taken (`recording.ready`), and checked inside it.
        self._flags: dict[str, bool] = {}

    async def record(
        self, interactions: Sequence[Interaction], pixel_state: PixelState
    ) -> Recorded:
        """Recorded once committed; raises UnknownOrganizations for this caller alone."""
        if self._wakeup is None:
            raise RuntimeError("the group committer is not running")
        answer: asyncio.Future[Recorded] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(Submission(interactions, pixel_state), answer))
        self._wakeup.set()
        return await answer

    async def run(self, stop: asyncio.Event) -> None:
        """Commit whatever is waiting, again and again, until stopped and drained."""
        self._wakeup = wakeup = asyncio.Event()
        stopping = asyncio.create_task(self._wake_when(stop, wakeup))
        try:
            while True:
                if not self._waiting:
                    if stop.is_set():
                        return
                    await wakeup.wait()
                    wakeup.clear()
                    continue
                await _let_arrivals_join()
                await self._commit(self._take())
                await asyncio.sleep(0)  # an inline commit held the loop: let it serve I/O
        finally:
            stopping.cancel()
            self._wakeup = None
            for waiting in self._waiting:  # only if the loop itself was cancelled
                waiting.answer.cancel()

    @staticmethod
    async def _wake_when(stop: asyncio.Event, wakeup: asyncio.Event) -> None:
        await stop.wait()
        wakeup.set()

    def _take(self) -> list[_Waiting]:
        taken: list[_Waiting] = []
        size = 0
        while self._waiting:
            added = len(self._waiting[0].submission.interactions)
            if taken and size + added > MAX_INTERACTIONS_PER_COMMIT:
                break
            taken.append(self._waiting.popleft())
            size += added
        return taken

    async def _commit(self, group: list[_Waiting]) -> None:
        now = time.time()
        try:
            submissions = [waiting.submission for waiting in group]
            readied = recording.ready(submissions, now, self._flags)
            outcomes = await self._record_inline(readied, now)
            if outcomes is None:
                outcomes = await asyncio.to_thread(
                    recording.record_ready, self._engine, readied, now, learned=self._flags
                )
                self._on_commit(len(readied))
        except Exception as exc:  # the database failed: every caller in the group hears it
            for waiting in group:
                if not waiting.answer.done():
                    waiting.answer.set_exception(exc)
            return
        for waiting, outcome in zip(group, outcomes, strict=True):
            if waiting.answer.done():  # the caller went away (client disconnected)
                continue
            if isinstance(outcome, UnknownOrganizations):
                waiting.answer.set_exception(outcome)
            else:
                waiting.answer.set_result(outcome)

    async def _record_inline(self, readied: list[recording.Ready], now: float) -> Outcomes | None:
        """Committed right here, or None when it must go to the thread (see the module doc).

        When another process (or a thread of this one) writes, the loop goes on serving and
        tries again shortly (`_wait_for_turn`); the commit still runs here once the turn comes.
        """
        if not self._inline:
            return None
        lock = writer_lock(self._engine)
        if not lock.acquire(blocking=False):
            await _wait_for_turn(lock)
        try:
            outcomes = recording.record_ready(
                self._engine, readied, now, lock_held=True, learned=self._flags
            )
        except WriterBusy:  # a writer that does not queue (a migration, a CLI command) holds it
            return None
        self._on_commit(len(readied))
        return outcomes


async def _let_arrivals_join() -> None:
    """Two turns of the loop before a group is taken: in the first the loop reads the sockets
    that became readable (each request there gets its task), in the second those tasks run up
    to `record`. Under load this gathers the requests already on the wire into this commit
    rather than the next: with 32 single-event connections, 27 requests a commit instead of
    11, and a fifth less CPU a request (the commit's fixed cost, shared). Alone, a request
    waits two turns of an idle loop, tens of microseconds: nothing is held on a timer.
    """
    for _ in range(ARRIVAL_TURNS):
        await asyncio.sleep(0)


async def _wait_for_turn(lock: WriterLock) -> None:
    """Until this process takes `lock`, trying every TURN_POLL_SECONDS between other work.

    Polled from the loop rather than awaited on a thread: a thread that took the lock held it,
    idle, until the loop had finished whatever request it was validating (a 1,000-event batch is
    ~4 ms in one pydantic call) and until it got the GIL back; with two serve processes the
    writer sat idle that way as much as it wrote. Polled, the lock is held only while writing.
    """
    while not lock.acquire(blocking=False):  # noqa: ASYNC110 (no event: another process frees it)
        await asyncio.sleep(TURN_POLL_SECONDS)
