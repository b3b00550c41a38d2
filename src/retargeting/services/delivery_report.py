"""What the admin needs to know about delivery: per-event counts, Meta's last errors, the pause.

The spec's worst gap is silent CAPI failures; this report is where they stop being silent. Totals
come from the running `delivery_counters` (never a scan of the outbox) plus a count of the
waiting rows; the pause and pixel state come from the process's
settings snapshot, which is at most one poll old.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from retargeting.db import outbox, settings_store
from retargeting.db.engine import READ_ONLY
from retargeting.domain.events import ALL_EVENT_NAMES
from retargeting.domain.pixel import PixelState
from retargeting.snapshot import Snapshot

LAST_ERRORS_LIMIT = 10


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    events: list[outbox.EventNameStats]  # every name of the spec's table, zeros when none
    last_errors: list[outbox.LastError]
    paused: settings_store.DeliveryPause | None
    pixel_state: PixelState


def build(
    engine: Engine, snapshot: Snapshot, *, errors_limit: int = LAST_ERRORS_LIMIT
) -> DeliveryReport:
    with engine.connect().execution_options(**{READ_ONLY: True}) as conn:
        stats = {row.event_name: row for row in outbox.stats_by_event_name(conn)}
        errors = outbox.last_errors(conn, limit=errors_limit)
    events = [
        stats.get(name) or outbox.EventNameStats(name, 0, 0, 0, 0, None) for name in ALL_EVENT_NAMES
    ]
    # Names outside the table can only come from older code; show them rather than hide rows.
    events += [row for name, row in sorted(stats.items()) if name not in ALL_EVENT_NAMES]
    return DeliveryReport(
        events=events,
        last_errors=errors,
        paused=snapshot.pause,
        pixel_state=snapshot.pixel.state,
    )
