"""The write path: an interaction, its counter and its 0 to 3 outbox events in one transaction.

Nothing here talks to Meta; the caller returns as soon as the transaction commits.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine

from retargeting.db import interactions as interaction_rows
from retargeting.db import orgs, outbox
from retargeting.db.engine import writing
from retargeting.domain.events import (
    Interaction,
    InteractionKind,
    Prepared,
    event_rows,
    prepare,
)
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


@dataclass(frozen=True, slots=True)
class Submission:
    """One caller's interactions: recorded together or not at all."""

    interactions: Sequence[Interaction]
    pixel_state: PixelState


def record(
    engine: Engine, interactions: Sequence[Interaction], pixel_state: PixelState, now: float
) -> Recorded:
    """Record all interactions or none (an unknown organization rolls the whole batch back)."""
    [outcome] = record_many(engine, [Submission(interactions, pixel_state)], now)
    if isinstance(outcome, UnknownOrganizations):
        raise outcome
    return outcome


@dataclass(frozen=True, slots=True)
class Ready:
    """A submission with all the work that needs no transaction already done: hashes, rows,
    and its outbox rows chosen by a guess at its organizations' B2B flags. Done before the
    writer lock is taken, so the lock is held only for the statements (with `serve
    --processes N`, that hold is every other process's wait). The flags are read inside the
    transaction; where one differs from the guess, the outbox rows are built again there."""

    submission: Submission
    prepared: list[Prepared]
    pageviews: list[interaction_rows.Row]
    calls: list[interaction_rows.Row]
    guessed_flags: dict[str, bool]
    outbox_rows: list[outbox.EnqueuedRow]
    recorded: Recorded


def ready(
    submissions: Sequence[Submission], now: float, flags: Mapping[str, bool] | None = None
) -> list[Ready]:
    """`flags`: the B2B flags last read per organization (`record_ready`'s `learned`); an
    organization missing from it is guessed not B2B."""
    known = flags or {}
    readied = []
    for submission in submissions:
        serialise = submission.pixel_state is PixelState.ACTIVE  # else no event can fire
        prepared = [prepare(i, serialise=serialise) for i in submission.interactions]
        pageviews, calls = interaction_rows.rows(submission.interactions, prepared, now)
        guessed = {
            i.organization_id: known.get(i.organization_id, False) for i in submission.interactions
        }
        outbox_rows, recorded = _events(submission, prepared, guessed, now)
        readied.append(
            Ready(submission, prepared, pageviews, calls, guessed, outbox_rows, recorded)
        )
    return readied


def record_many(
    engine: Engine, submissions: Sequence[Submission], now: float
) -> list[Recorded | UnknownOrganizations]:
    """Record many callers' submissions in one transaction (group commit), each all-or-none."""
    return record_ready(engine, ready(submissions, now), now)


def record_ready(
    engine: Engine,
    readied: Sequence[Ready],
    now: float,
    *,
    lock_held: bool = False,
    learned: MutableMapping[str, bool] | None = None,
) -> list[Recorded | UnknownOrganizations]:
    """Record readied submissions in one transaction (group commit), each all-or-none.

    One commit for many requests is what lets a single SQLite file take thousands of events a
    second: the commit, not the rows, is the cost. A submission naming an unknown organization
    is left out (its outcome says which ids) without failing the others. `lock_held` is
    `writing`'s: the caller took the writer lock, which is released here, and WriterBusy means
    nothing was written. `learned` is updated with the B2B flags the transaction read, for the
    next `ready` to guess by.
    """
    submissions = [r.submission for r in readied]
    try:
        with writing(engine, lock_held=lock_held) as conn:
            # The counter update doubles as the existence check: an unknown id updates nothing.
            flags = orgs.add_counts_returning_flags(conn, _increments(submissions))
            outcomes = [_unknown_in(submission, flags.keys()) for submission in submissions]
            if outcomes[0] and len(submissions) == 1:
                raise outcomes[0]  # roll back, tell the caller
            refused = [s for s, unknown in zip(submissions, outcomes, strict=True) if unknown]
            if refused:  # take back what they added to the organizations that do exist
                orgs.add_counts_returning_flags(conn, _increments(refused, sign=-1))
            accepted = [r for r, unknown in zip(readied, outcomes, strict=True) if not unknown]
            recorded = iter(_write(conn, accepted, flags, now))
    except UnknownOrganizations as unknown:
        return [unknown]
    if learned is not None:
        learned.update(flags)
    return [unknown or next(recorded) for unknown in outcomes]


def _unknown_in(submission: Submission, known: Collection[str]) -> UnknownOrganizations | None:
    unknown = sorted({i.organization_id for i in submission.interactions} - set(known))
    return UnknownOrganizations(unknown) if unknown else None


def _increments(submissions: Sequence[Submission], sign: int = 1) -> dict[str, tuple[int, int]]:
    increments: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for submission in submissions:
        for interaction in submission.interactions:
            slot = 0 if interaction.kind is InteractionKind.WIDGET_VIEW else 1
            increments[interaction.organization_id][slot] += sign
    return {org_id: (pageviews, calls) for org_id, (pageviews, calls) in increments.items()}


def _write(
    conn: Connection, readied: Sequence[Ready], flags: Mapping[str, bool], now: float
) -> list[Recorded]:
    """The rows and outbox events of every accepted submission, one statement per hundred."""
    results: list[Recorded] = []
    outbox_rows: list[outbox.EnqueuedRow] = []
    pageviews: list[interaction_rows.Row] = []
    calls: list[interaction_rows.Row] = []
    for r in readied:
        if all(flags[org_id] == guess for org_id, guess in r.guessed_flags.items()):
            outbox_rows.extend(r.outbox_rows)
            results.append(r.recorded)
        else:  # a flag changed since the guess (or was never read): choose the events again
            rows, recorded = _events(r.submission, r.prepared, flags, now)
            outbox_rows.extend(rows)
            results.append(recorded)
        pageviews.extend(r.pageviews)
        calls.extend(r.calls)
    interaction_rows.insert_rows(conn, pageviews, calls)
    outbox.enqueue(conn, outbox_rows)
    return results


def _events(
    submission: Submission, prepared: Sequence[Prepared], flags: Mapping[str, bool], now: float
) -> tuple[list[outbox.EnqueuedRow], Recorded]:
    """The outbox rows of a submission's events if its organizations' flags are `flags`."""
    rows = event_rows(submission.interactions, prepared, submission.pixel_state, flags)
    recorded = Recorded(
        interactions=len(submission.interactions),
        events_queued=len(rows),
        by_event_name=Counter(row[1] for row in rows),
    )
    return outbox.enqueued_rows(rows, now), recorded
