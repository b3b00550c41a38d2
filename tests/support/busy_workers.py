"""Keep delivery workers busy and note when each one sends: the multi-process settings test and
its benchmark both watch workers obey a change while events keep arriving."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Protocol

from sqlalchemy import Engine

from retargeting.domain.pixel import PixelState
from retargeting.outbox import recording
from tests.factories import make_interaction

ARRIVAL_CHECK_SECONDS = 0.005
TRICKLE_EVERY_SECONDS = 0.02
TRICKLE_SIZE = 10  # per transaction: 500 events/s, so every claim (each 50 ms linger) finds some


class CountsRequests(Protocol):
    """A Graph stand-in, in this process or behind HTTP: its `requests` counter is what we read."""

    def stats(self) -> Mapping[str, object]: ...


class ArrivalLog(threading.Thread):
    """When each stand-in's request count grew, by this process's monotonic clock.

    A request is noted at most ARRIVAL_CHECK_SECONDS after the stand-in recorded it, so the
    figures err on the late side. Use it as a context manager.
    """

    def __init__(self, graphs: Sequence[CountsRequests]) -> None:
        super().__init__(name="arrival-log", daemon=True)
        self._graphs = graphs
        self._done = threading.Event()
        self._arrivals: list[list[float]] = [[] for _ in graphs]

    def __enter__(self) -> ArrivalLog:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self.join(5)

    def run(self) -> None:
        seen = [0] * len(self._graphs)
        while not self._done.wait(ARRIVAL_CHECK_SECONDS):
            for index, graph in enumerate(self._graphs):
                count = int(str(graph.stats()["requests"]))
                if count != seen[index]:
                    self._arrivals[index].append(time.monotonic())
                    seen[index] = count

    def after(self, worker: int, since: float) -> list[float]:
        return [t for t in list(self._arrivals[worker]) if t > since]


class Trickle(threading.Thread):
    """Queues a few events every 20 ms straight into the outbox, as an active pixel would, so the
    workers always have work. Use it as a context manager; a failure to queue is raised on exit."""

    def __init__(self, engine: Engine, organization_id: str) -> None:
        super().__init__(name="trickle", daemon=True)
        self._engine = engine
        self._organization_id = organization_id
        self._done = threading.Event()
        self.error: BaseException | None = None

    def __enter__(self) -> Trickle:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self.join(15)
        if self.error is not None and exc_info[0] is None:
            raise RuntimeError("queuing the trickle of events failed") from self.error

    def run(self) -> None:
        for batch in itertools.count():
            if self._done.wait(TRICKLE_EVERY_SECONDS):
                return
            now = time.time()
            interactions = [
                make_interaction(
                    organization_id=self._organization_id,
                    visitor_id=f"steady-{batch}-{i}",
                    event_time=int(now),
                )
                for i in range(TRICKLE_SIZE)
            ]
            try:
                recording.record(self._engine, interactions, PixelState.ACTIVE, now)
            except Exception as exc:  # raised by __exit__, in the caller's thread
                self.error = exc
                return
