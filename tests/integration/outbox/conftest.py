"""A dispatcher wired to a real database and a real Graph API stand-in, with a clock we move."""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine

from retargeting.graph.client import GraphClient, GraphTimeouts
from retargeting.metrics import Metrics
from retargeting.outbox.dispatcher import Dispatcher, Tunables
from retargeting.snapshot import SnapshotHolder
from tests.factories import ACCESS_TOKEN, PIXEL_ID, make_cipher
from tests.fakes.graph_stand_in import GraphStandIn

CLIENT_TIMEOUT = 0.5  # seconds; stand-in timeouts stall longer than this


@dataclass
class MovableClock:
    now: float

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def graph() -> Iterator[GraphStandIn]:
    with GraphStandIn(valid_tokens={ACCESS_TOKEN}, known_pixels={PIXEL_ID}) as stand_in:
        yield stand_in


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(time.time() + 5)  # ahead of the rows the tests queue


@pytest.fixture
def snapshot(engine: Engine) -> SnapshotHolder:
    return SnapshotHolder(engine, make_cipher())


@pytest.fixture
async def graph_client(graph: GraphStandIn) -> AsyncIterator[GraphClient]:
    client = GraphClient(graph.url, "v25.0", GraphTimeouts.from_total(CLIENT_TIMEOUT))
    yield client
    await client.aclose()


def build_dispatcher(
    engine: Engine,
    graph_client: GraphClient,
    snapshot: SnapshotHolder,
    clock: MovableClock,
    *,
    worker_id: str = "worker-a",
    **tunables: float,
) -> Dispatcher:
    return Dispatcher(
        engine=engine,
        graph=graph_client,
        snapshot=snapshot,
        cipher=make_cipher(),
        metrics=Metrics(),
        worker_id=worker_id,
        tunables=Tunables(**tunables),  # type: ignore[arg-type]
        clock=clock,
        rng=random.Random(7),
    )


@pytest.fixture
def dispatcher(
    engine: Engine, graph_client: GraphClient, snapshot: SnapshotHolder, clock: MovableClock
) -> Dispatcher:
    return build_dispatcher(engine, graph_client, snapshot, clock)
