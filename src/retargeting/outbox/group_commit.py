"""Group commit for the ingest API: the requests that arrive while one transaction commits share
the next one.

A commit costs far more than the rows in it (on SQLite it is the WAL append and the lock hand-off;
on PostgreSQL a network round trip and a WAL flush). Each request still waits for the commit that
holds its rows, so an accepted event is durable, but under load one commit answers dozens of
requests. With one request at a time it commits at once: nothing lingers, so an idle server
answers as fast as before. Writes run in a worker thread, so the event loop keeps parsing and
validating the next requests meanwhile.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import time
from collections.abc import Callable, Sequence

from sqlalchemy import Engine

from retargeting.domain.events import Interaction
from retargeting.domain.pixel import PixelState
from retargeting.outbox import recording
from retargeting.outbox.recording import Recorded, Submission, UnknownOrganizations

MAX_INTERACTIONS_PER_COMMIT = 5000  # keeps each transaction short, so one lock hold stays short


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
        self._on_commit = on_commit  # told how many requests each commit answered (metrics)
        self._waiting: collections.deque[_Waiting] = collections.deque()
        self._wakeup: asyncio.Event | None = None

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
        stopping = asyncio.create_task(stop.wait())
        try:
            while True:
                if not self._waiting:
                    if stop.is_set():
                        return
                    woken = asyncio.create_task(wakeup.wait())
                    await asyncio.wait({woken, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    woken.cancel()
                    wakeup.clear()
                    continue
                await self._commit(self._take())
        finally:
            stopping.cancel()
            self._wakeup = None
            for waiting in self._waiting:  # only if the loop itself was cancelled
                waiting.answer.cancel()

    def _take(self) -> list[_Waiting]:
        taken: list[_Waiting] = []
        size = 0
        while self._waiting and (not taken or size < MAX_INTERACTIONS_PER_COMMIT):
            waiting = self._waiting.popleft()
            size += len(waiting.submission.interactions)
            taken.append(waiting)
        return taken

    async def _commit(self, group: list[_Waiting]) -> None:
        submissions = [waiting.submission for waiting in group]
        try:
            outcomes = await asyncio.to_thread(
                recording.record_many, self._engine, submissions, time.time()
            )
        except Exception as exc:  # the database failed: every caller in the group hears it
            for waiting in group:
                if not waiting.answer.done():
                    waiting.answer.set_exception(exc)
            return
        self._on_commit(len(group))
        for waiting, outcome in zip(group, outcomes, strict=True):
            if waiting.answer.done():  # the caller went away (client disconnected)
                continue
            if isinstance(outcome, UnknownOrganizations):
                waiting.answer.set_exception(outcome)
            else:
                waiting.answer.set_result(outcome)
