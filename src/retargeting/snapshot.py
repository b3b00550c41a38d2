"""Each process's in-memory view of the settings, reloaded within one poll of any change.

The hot path reads `holder.current` and never queries settings. Every change to what the snapshot
holds (the pixel, a delivery pause, the ingest keys) increments `settings_revision` in its own
transaction; a cheap poll of that one row (every 0.5 s by default) reloads the snapshot when it
moved, so every process obeys a change within about a second. Organization flags are not in the
snapshot: the write path reads them fresh on each event (see db/orgs.py).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy import Engine

from retargeting.db import auth, settings_store
from retargeting.db.engine import READ_ONLY
from retargeting.domain.pixel import NO_PIXEL, PixelSettings
from retargeting.security import TokenCipher
from retargeting.waiting import sleep_unless

log = logging.getLogger(__name__)

IDLE_CHECK_SECONDS = 0.05  # how often an idle wait looks for a new snapshot


@dataclass(frozen=True, slots=True)
class Snapshot:
    revision: int
    pixel: PixelSettings
    pause: settings_store.DeliveryPause | None
    api_key_hashes: frozenset[str]


EMPTY = Snapshot(revision=-1, pixel=NO_PIXEL, pause=None, api_key_hashes=frozenset())


class SnapshotHolder:
    def __init__(self, engine: Engine, cipher: TokenCipher) -> None:
        self._engine = engine
        self._cipher = cipher
        self.current: Snapshot = EMPTY

    def refresh(self) -> bool:
        """Reload if the stored revision moved; returns whether it did. Blocking (database)."""
        with self._engine.connect().execution_options(**{READ_ONLY: True}) as conn:
            revision = settings_store.read_revision(conn)
            if revision == self.current.revision:
                return False
            self.current = Snapshot(
                revision=revision,
                pixel=settings_store.read_pixel(conn, self._cipher),
                pause=settings_store.read_pause(conn),
                api_key_hashes=auth.live_api_key_hashes(conn),
            )
        log.info("settings reloaded", extra={"action": "snapshot_reload", "revision": revision})
        return True

    async def wait_changed(self, stop: asyncio.Event, seconds: float) -> None:
        """Sleep until the snapshot changes, `stop` is set, or `seconds` pass (an idle wait)."""
        revision = self.current.revision
        deadline = asyncio.get_running_loop().time() + seconds
        while self.current.revision == revision and not stop.is_set():
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0 or await sleep_unless(stop, min(remaining, IDLE_CHECK_SECONDS)):
                return

    async def watch(self, poll_seconds: float, stop: asyncio.Event) -> None:
        """Poll the revision until `stop` is set; database errors are logged and retried."""
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.refresh)
            except Exception:
                log.exception("settings poll failed", extra={"action": "snapshot_poll_failed"})
            await sleep_unless(stop, poll_seconds)
