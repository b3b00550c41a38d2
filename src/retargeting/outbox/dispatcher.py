"""The delivery loop: claim due events, send them to Meta in batches, write outcomes back.

Several requests are in flight at once (one pooled HTTP client); a full batch leaves at once and
a partial one after a short linger. Every answer is classified by the pure policy in
`domain.delivery`; this module only carries the decisions out. No database transaction is ever
open while a request to Meta is in flight.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from retargeting.db import outbox, settings_store
from retargeting.db.engine import writing
from retargeting.db.outbox import ClaimedEvent, Retry
from retargeting.domain import delivery
from retargeting.domain.delivery import Concurrency, Disposition, GraphError
from retargeting.domain.events import MAX_EVENT_AGE_SECONDS, is_expired, request_body
from retargeting.domain.pixel import PixelSettings, PixelState
from retargeting.graph.client import Accepted, GraphClient
from retargeting.metrics import Metrics
from retargeting.security import TokenCipher
from retargeting.snapshot import SnapshotHolder
from retargeting.waiting import sleep_unless

if TYPE_CHECKING:
    from retargeting.runtime import Runtime

log = logging.getLogger(__name__)

T = TypeVar("T")

IDLE_SECONDS = 1.0  # how long to wait for new settings while delivery cannot run
DB_RETRY_SECONDS = 1.0  # pause after a database error before claiming again
WRITE_ATTEMPTS = 8  # write-backs survive a database restart of several seconds
MAINTENANCE_SECONDS = 60.0  # how often stale rows are expired and old rows purged
SHUTDOWN_GRACE_SECONDS = 10.0  # in-flight requests may finish and record their outcome
EXPIRED_SUBCODE = 2804003  # Meta: event_time too far in the past


@dataclass(frozen=True, slots=True)
class Tunables:
    batch_size: int = 1000  # Graph API limit per request
    max_in_flight: int = 8
    linger_seconds: float = 0.2
    lease_seconds: float = 30.0
    retention_days: int = 30


class Dispatcher:
    def __init__(
        self,
        *,
        engine: Engine,
        graph: GraphClient,
        snapshot: SnapshotHolder,
        cipher: TokenCipher,
        metrics: Metrics,
        worker_id: str,
        tunables: Tunables,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._engine = engine
        self._graph = graph
        self._snapshot = snapshot
        self._cipher = cipher
        self._metrics = metrics
        self._worker_id = worker_id
        self._tunables = tunables
        self._clock = clock
        self._rng = rng or random.Random()
        self.concurrency = Concurrency(limit=tunables.max_in_flight, maximum=tunables.max_in_flight)
        self._in_flight: set[asyncio.Task[None]] = set()
        metrics.in_flight_limit.set(self.concurrency.limit)

    @classmethod
    def from_runtime(cls, runtime: Runtime) -> Dispatcher:
        s = runtime.settings
        return cls(
            engine=runtime.engine,
            graph=runtime.graph,
            snapshot=runtime.snapshot,
            cipher=runtime.cipher,
            metrics=runtime.metrics,
            worker_id=runtime.worker_id,
            tunables=Tunables(
                batch_size=s.batch_size,
                max_in_flight=s.max_in_flight,
                linger_seconds=s.linger_seconds,
                lease_seconds=s.lease_seconds,
                retention_days=s.retention_days,
            ),
        )

    async def run(self, stop: asyncio.Event) -> None:
        log.info(
            "dispatcher started", extra={"action": "dispatcher_start", "worker": self._worker_id}
        )
        maintenance = asyncio.create_task(self._maintain(stop), name="outbox-maintenance")
        try:
            while not stop.is_set():
                try:
                    await self._step(stop)
                except Exception:
                    # Never let one surprise stop delivery for good: log it, breathe, go on.
                    log.exception("dispatcher step failed", extra={"action": "step_failed"})
                    await sleep_unless(stop, DB_RETRY_SECONDS)
        finally:
            if self._in_flight:
                await asyncio.wait(self._in_flight, timeout=SHUTDOWN_GRACE_SECONDS)
            await maintenance
            log.info("dispatcher stopped", extra={"action": "dispatcher_stop"})

    async def drain(self) -> None:
        """Deliver everything due now and wait for the outcomes (tests and one-shot tools)."""
        while await self._claim_and_start(self._snapshot.current.pixel):
            pass
        while self._in_flight:
            await asyncio.wait(self._in_flight)

    async def _step(self, stop: asyncio.Event) -> None:
        snap = self._snapshot.current
        self._metrics.delivery_paused.set(1 if snap.pause else 0)
        if snap.pause is not None or snap.pixel.state is not PixelState.ACTIVE:
            await self._snapshot.wait_changed(stop, IDLE_SECONDS)
            return
        if len(self._in_flight) >= self.concurrency.limit:
            await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)
            return
        try:
            claimed = await self._claim_and_start(snap.pixel)
        except OperationalError:
            log.warning("claim failed, database unreachable", extra={"action": "claim_failed"})
            await sleep_unless(stop, DB_RETRY_SECONDS)
            return
        if claimed < self._tunables.batch_size:
            await sleep_unless(stop, self._tunables.linger_seconds)

    async def _claim_and_start(self, pixel: PixelSettings) -> int:
        """Claim one batch and start sending it; returns how many events were claimed."""
        now = self._clock()
        rows = await asyncio.to_thread(self._claim, now)
        if rows:
            task = asyncio.create_task(self._deliver(rows, pixel))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        return len(rows)

    def _claim(self, now: float) -> list[ClaimedEvent]:
        with writing(self._engine) as conn:
            return outbox.claim(
                conn,
                worker_id=self._worker_id,
                now=now,
                lease_seconds=self._tunables.lease_seconds,
                limit=self._tunables.batch_size,
            )

    async def _deliver(self, rows: list[ClaimedEvent], pixel: PixelSettings) -> None:
        try:
            now = self._clock()
            live: list[ClaimedEvent] = []
            expired: list[int] = []
            for row in rows:
                if is_expired(row.event_time, int(now)):
                    expired.append(row.id)
                else:
                    live.append(row)
            if expired:
                await self._write(
                    lambda conn: outbox.mark_expired(
                        conn, expired, worker_id=self._worker_id, now=now
                    )
                )
                self._metrics.events_expired.inc(len(expired))
            if live:
                await self._send(live, pixel)
        except Exception:
            # The rows stay claimed until their lease ends, then fall due again: nothing is lost.
            log.exception(
                "delivery failed", extra={"action": "deliver_crashed", "events": len(rows)}
            )

    async def _send(self, rows: list[ClaimedEvent], pixel: PixelSettings) -> None:
        body = request_body([r.payload for r in rows], pixel.access_token, pixel.test_event_code)
        started = time.perf_counter()
        answer = await self._graph.send(pixel.pixel_id, body)
        self._metrics.graph_latency.observe(time.perf_counter() - started)
        if isinstance(answer, Accepted):
            await self._delivered(rows, answer)
            return
        disposition = delivery.classify(answer)
        self._metrics.graph_requests.labels(outcome=disposition.value).inc()
        log.warning(
            "graph api refused a batch",
            extra={
                "action": "graph_error",
                "disposition": disposition.value,
                "code": answer.code,
                "subcode": answer.error_subcode,
                "fbtrace_id": answer.fbtrace_id,
                "events": len(rows),
            },
        )
        if disposition is Disposition.INVALID:
            await self._isolate_invalid(rows, pixel, answer)
        elif disposition is Disposition.PAUSE:
            await self._pause(rows, pixel, answer)
        else:
            if disposition is Disposition.RATE_LIMITED:
                self.concurrency = self.concurrency.after_rate_limit()
                self._metrics.in_flight_limit.set(self.concurrency.limit)
            await self._retry(rows, answer)

    async def _delivered(self, rows: list[ClaimedEvent], answer: Accepted) -> None:
        now = self._clock()
        ids = [r.id for r in rows]
        await self._write(
            lambda conn: outbox.mark_delivered(
                conn, ids, worker_id=self._worker_id, fbtrace_id=answer.fbtrace_id, now=now
            )
        )
        self._metrics.graph_requests.labels(outcome=Disposition.DELIVERED.value).inc()
        self._metrics.events_delivered.inc(len(rows))
        if answer.events_received != len(rows):
            log.warning(
                "meta counted a different number of events",
                extra={
                    "action": "events_received_mismatch",
                    "sent": len(rows),
                    "received": answer.events_received,
                    "fbtrace_id": answer.fbtrace_id,
                },
            )
        before = self.concurrency.limit
        self.concurrency = self.concurrency.after_clean_answer()
        if self.concurrency.limit != before:
            self._metrics.in_flight_limit.set(self.concurrency.limit)

    async def _retry(self, rows: list[ClaimedEvent], error: GraphError) -> None:
        now = self._clock()
        retries = [
            Retry(
                id=r.id,
                next_attempt_at=delivery.next_attempt_at(r.attempts + 1, now, self._rng),
                error=error.summary,
                error_code=error.code,
                attempted_at=now,
            )
            for r in rows
        ]
        await self._write(
            lambda conn: outbox.schedule_retries(conn, retries, worker_id=self._worker_id)
        )
        self._metrics.event_retries.inc(len(rows))

    async def _isolate_invalid(
        self, rows: list[ClaimedEvent], pixel: PixelSettings, error: GraphError
    ) -> None:
        """One bad event rejects the whole batch: halve until it stands alone, send the rest."""
        if len(rows) > 1:
            middle = len(rows) // 2
            await self._send(rows[:middle], pixel)
            await self._send(rows[middle:], pixel)
            return
        now = self._clock()
        ids = [rows[0].id]
        if error.error_subcode == EXPIRED_SUBCODE and rows[0].event_time < now - (
            MAX_EVENT_AGE_SECONDS - 3600
        ):
            await self._write(
                lambda conn: outbox.mark_expired(conn, ids, worker_id=self._worker_id, now=now)
            )
            self._metrics.events_expired.inc()
            return
        await self._write(
            lambda conn: outbox.mark_failed(
                conn,
                ids,
                worker_id=self._worker_id,
                error=error.summary,
                error_code=error.code,
                fbtrace_id=error.fbtrace_id,
                now=now,
            )
        )
        self._metrics.events_failed.inc()

    async def _pause(
        self, rows: list[ClaimedEvent], pixel: PixelSettings, error: GraphError
    ) -> None:
        """Stop sending for this pixel until the admin saves new credentials; keep the events."""
        now = self._clock()
        ids = [r.id for r in rows]

        def pause_and_release(conn: Connection) -> int:
            stored = settings_store.read_pixel(conn, self._cipher)
            same_credentials = (stored.pixel_id, stored.access_token) == (
                pixel.pixel_id,
                pixel.access_token,
            )
            if same_credentials and settings_store.read_pause(conn) is None:
                settings_store.write_pause(
                    conn,
                    settings_store.DeliveryPause(
                        reason=error.summary,
                        code=error.code,
                        error_subcode=error.error_subcode,
                        fbtrace_id=error.fbtrace_id,
                        since=now,
                    ),
                    now,
                )
            return outbox.release(conn, ids, worker_id=self._worker_id, now=now)

        await self._write(pause_and_release)
        await asyncio.to_thread(self._snapshot.refresh)

    async def _write(self, operation: Callable[[Connection], T]) -> T:
        """Run a write-back in its own transaction, retrying through a database outage."""
        delay = 0.1
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                return await asyncio.to_thread(self._in_transaction, operation)
            except OperationalError:
                if attempt == WRITE_ATTEMPTS:
                    raise
                log.warning("write-back failed, retrying", extra={"action": "writeback_retry"})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        raise AssertionError("unreachable")

    def _in_transaction(self, operation: Callable[[Connection], T]) -> T:
        with writing(self._engine) as conn:
            return operation(conn)

    async def _maintain(self, stop: asyncio.Event) -> None:
        while not await sleep_unless(stop, MAINTENANCE_SECONDS):
            try:
                await self.maintain_once()
            except OperationalError:
                log.warning("maintenance failed", extra={"action": "maintenance_failed"})

    async def maintain_once(self) -> tuple[int, int]:
        """Expire what Meta would refuse and purge finished rows past retention."""
        now = self._clock()
        expired = await self._write(
            lambda conn: outbox.expire_stale(
                conn, older_than_event_time=int(now) - MAX_EVENT_AGE_SECONDS, now=now
            )
        )
        purged = await self._write(
            lambda conn: outbox.purge_finished(
                conn, finished_before=now - self._tunables.retention_days * 86400
            )
        )
        if expired or purged:
            self._metrics.events_expired.inc(expired)
            log.info(
                "outbox maintenance",
                extra={"action": "maintenance", "expired": expired, "purged": purged},
            )
        return expired, purged
