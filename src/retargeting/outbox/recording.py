"""The write path: an interaction, its counter and its 0 to 3 outbox events in one transaction.

Nothing here talks to Meta; the caller returns as soon as the transaction commits.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine

from retargeting.db import interactions as interaction_rows
from retargeting.db import orgs, outbox
from retargeting.domain.events import Interaction, InteractionKind, QueuedEvent, events_for
from retargeting.domain.pixel import PixelState


class UnknownOrganizations(LookupError):
    """Some interactions name organizations the platform never synced; nothing was recorded."""

    def __init__(self, organization_ids: Sequence[str]) -> None:
        self.organization_ids = list(organization_ids)
        super().__init__(f"unknown organization(s): {', '.join(self.organization_ids)}")


@dataclass(frozen=True, slots=True)
class Recorded:
    interactions: int
    events_queued: int
    by_event_name: Mapping[str, int] = field(default_factory=dict)  # for the metrics counter


def record(
    engine: Engine, interactions: Sequence[Interaction], pixel_state: PixelState, now: float
) -> Recorded:
    """Record all interactions or none (an unknown organization rolls the whole batch back)."""
    increments: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for interaction in interactions:
        slot = 0 if interaction.kind is InteractionKind.WIDGET_VIEW else 1
        increments[interaction.organization_id][slot] += 1
    with engine.begin() as conn:
        flags = orgs.add_counts_returning_flags(
            conn, {org_id: (pv, calls) for org_id, (pv, calls) in increments.items()}
        )
        unknown = [org_id for org_id in increments if org_id not in flags]
        if unknown:
            raise UnknownOrganizations(unknown)
        interaction_rows.insert_rows(conn, interactions, now)
        queued: list[tuple[str, QueuedEvent]] = [
            (i.organization_id, event)
            for i in interactions
            for event in events_for(i, pixel_state, flags[i.organization_id])
        ]
        outbox.enqueue(conn, queued, now)
    return Recorded(
        interactions=len(interactions),
        events_queued=len(queued),
        by_event_name=Counter(event.event_name for _, event in queued),
    )
