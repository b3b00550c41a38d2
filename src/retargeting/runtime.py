"""What a running process owns: engine, cipher, settings snapshot, metrics, Graph API client.

Built from `Settings` by `build_runtime` (nothing connects at import time); `running()` starts
the background loops (settings poll, and the dispatcher when this process delivers) and stops
them cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from retargeting import security
from retargeting.db import outbox
from retargeting.db.engine import READ_ONLY, checkpoint, make_engine
from retargeting.graph.client import GraphClient, GraphTimeouts
from retargeting.metrics import Metrics
from retargeting.outbox.dispatcher import Dispatcher
from retargeting.outbox.group_commit import GroupCommitter
from retargeting.security import TokenCipher
from retargeting.settings import Settings
from retargeting.snapshot import SnapshotHolder

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    cipher: TokenCipher
    snapshot: SnapshotHolder
    metrics: Metrics
    graph: GraphClient
    worker_id: str
    signing_key: bytes  # signs browser sessions; derived from the secret key
    committer: GroupCommitter  # the ingest handlers' writer

    def queue_depth(self) -> int:
        with self.engine.connect().execution_options(**{READ_ONLY: True}) as conn:
            return outbox.depth(conn)


def build_runtime(settings: Settings) -> Runtime:
    engine = make_engine(settings.database_url)
    secret_key = settings.resolve_secret_key()
    cipher = TokenCipher(secret_key)
    metrics = Metrics()
    runtime = Runtime(
        settings=settings,
        engine=engine,
        cipher=cipher,
        snapshot=SnapshotHolder(engine, cipher),
        metrics=metrics,
        graph=GraphClient(
            settings.graph_api_url,
            settings.graph_api_version,
            GraphTimeouts.from_total(settings.graph_timeout_seconds),
            max_connections=settings.max_in_flight * 2,
        ),
        worker_id=f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}",
        signing_key=security.derive_key(secret_key, "browser sessions"),
        committer=GroupCommitter(engine, metrics.ingest_commit_requests.observe),
    )
    metrics.watch_queue_depth(runtime.queue_depth)
    return runtime


# Often enough that the WAL never reaches the commit-time backstop (SQLITE_AUTOCHECKPOINT_PAGES)
# between two passes: a steady 1,000 single-event commits a second write about 8,000 pages a
# second, and at one pass a second every ~1.2 s commit met the backstop and paid a checkpoint's
# fsync inside the request (10-30 ms, the steady benchmark's p99).
CHECKPOINT_EVERY_SECONDS = 0.25


async def _checkpoints(engine: Engine, stop: asyncio.Event) -> None:
    """Checkpoint the SQLite WAL off the request path, so no commit pays for it."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), CHECKPOINT_EVERY_SECONDS)
        try:
            await asyncio.to_thread(checkpoint, engine)
        except OperationalError:
            log.warning("checkpoint failed", extra={"action": "checkpoint_failed"})


@contextlib.asynccontextmanager
async def running(runtime: Runtime, *, deliver: bool) -> AsyncIterator[None]:
    """Run the background loops for the body's duration; the first snapshot loads before it."""
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    try:
        await asyncio.to_thread(runtime.snapshot.refresh)
        tasks.append(
            asyncio.create_task(
                runtime.snapshot.watch(runtime.settings.settings_poll_seconds, stop),
                name="settings-poll",
            )
        )
        tasks.append(asyncio.create_task(runtime.committer.run(stop), name="group-commit"))
        if runtime.settings.is_sqlite:
            tasks.append(asyncio.create_task(_checkpoints(runtime.engine, stop), name="checkpoint"))
        if deliver:
            dispatcher = Dispatcher.from_runtime(runtime)
            tasks.append(asyncio.create_task(dispatcher.run(stop), name="dispatcher"))
        # Let each loop take its first step, so the group committer is listening before the
        # first request can reach it (a request right after start-up met "not running": a 500).
        await asyncio.sleep(0)
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await runtime.graph.aclose()
        runtime.engine.dispose()
