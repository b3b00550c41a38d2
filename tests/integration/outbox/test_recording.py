from __future__ import annotations

import time

import pytest
from sqlalchemy import Engine, select

from retargeting.db import orgs
from retargeting.db.tables import call_logs, outbox_events, widget_pageviews
from retargeting.domain.events import InteractionKind
from retargeting.domain.pixel import PixelState
from retargeting.outbox import recording
from tests.factories import make_interaction, make_org


def test_widget_view_on_b2b_org_queues_base_and_b2b_events(engine: Engine) -> None:
    make_org(engine, "org-1", retargeting_enabled=True)
    result = recording.record(engine, [make_interaction()], PixelState.ACTIVE, time.time())
    assert result.events_queued == 2
    with engine.connect() as conn:
        names = conn.execute(select(outbox_events.c.event_name)).scalars().all()
        assert sorted(names) == ["GreetNow_WidgetView", "GreetNow_WidgetView_B2B"]
        assert conn.execute(select(widget_pageviews)).all()
        org = orgs.get(conn, "org-1")
    assert org is not None
    assert org.pageview_count == 1


def test_call_started_counts_and_queues_lead(engine: Engine) -> None:
    make_org(engine, "org-1")
    interaction = make_interaction(kind=InteractionKind.CALL_STARTED, call_id="c-9")
    result = recording.record(engine, [interaction], PixelState.ACTIVE, time.time())
    assert result.events_queued == 2
    with engine.connect() as conn:
        assert conn.execute(select(call_logs.c.call_id)).scalar_one() == "c-9"
        org = orgs.get(conn, "org-1")
    assert org is not None
    assert org.call_count == 1


@pytest.mark.parametrize("state", [PixelState.NOT_CONFIGURED, PixelState.DISABLED])
def test_inactive_pixel_counts_but_queues_nothing(engine: Engine, state: PixelState) -> None:
    make_org(engine, "org-1", retargeting_enabled=True)
    result = recording.record(engine, [make_interaction()], state, time.time())
    assert result.events_queued == 0
    with engine.connect() as conn:
        assert conn.execute(select(outbox_events)).all() == []
        org = orgs.get(conn, "org-1")
    assert org is not None
    assert org.pageview_count == 1


def test_unknown_organization_records_nothing(engine: Engine) -> None:
    make_org(engine, "org-1")
    batch = [make_interaction(), make_interaction(organization_id="nope")]
    with pytest.raises(recording.UnknownOrganizations) as caught:
        recording.record(engine, batch, PixelState.ACTIVE, time.time())
    assert caught.value.organization_ids == ["nope"]
    with engine.connect() as conn:
        assert conn.execute(select(outbox_events)).all() == []
        org = orgs.get(conn, "org-1")
    assert org is not None
    assert org.pageview_count == 0


def _queued(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(outbox_events.c.organization_id, outbox_events.c.event_name).order_by(
                outbox_events.c.id
            )
        ).all()
    return [(row[0], row[1]) for row in rows]


@pytest.mark.parametrize(
    "guess",
    [
        {},  # never read: guessed not B2B
        {"b2b": True, "plain": False},  # right
        {"b2b": False, "plain": True},  # both wrong (each flag changed since it was read)
    ],
)
def test_events_follow_the_flags_read_in_the_transaction_whatever_was_guessed(
    engine: Engine, guess: dict[str, bool]
) -> None:
    make_org(engine, "b2b", retargeting_enabled=True)
    make_org(engine, "plain")
    interactions = [
        make_interaction(organization_id="b2b", visitor_id="v1"),
        make_interaction(organization_id="plain", visitor_id="v2"),
        make_interaction(kind=InteractionKind.CALL_STARTED, organization_id="b2b", call_id="c1"),
    ]
    now = time.time()
    readied = recording.ready([recording.Submission(interactions, PixelState.ACTIVE)], now, guess)
    learned: dict[str, bool] = {}
    [outcome] = recording.record_ready(engine, readied, now, learned=learned)

    assert _queued(engine) == [
        ("b2b", "GreetNow_WidgetView"),
        ("b2b", "GreetNow_WidgetView_B2B"),
        ("plain", "GreetNow_WidgetView"),
        ("b2b", "GreetNow_CallStarted"),
        ("b2b", "Lead"),
        ("b2b", "GreetNow_CallStarted_B2B"),
    ]
    assert isinstance(outcome, recording.Recorded)
    assert outcome.events_queued == 6
    assert outcome.by_event_name == {
        "GreetNow_WidgetView": 2,
        "GreetNow_WidgetView_B2B": 1,
        "GreetNow_CallStarted": 1,
        "Lead": 1,
        "GreetNow_CallStarted_B2B": 1,
    }
    assert learned == {"b2b": True, "plain": False}


def test_a_refused_submission_teaches_nothing_about_unknown_organizations(engine: Engine) -> None:
    make_org(engine, "org-1", retargeting_enabled=True)
    now = time.time()
    submissions = [
        recording.Submission([make_interaction()], PixelState.ACTIVE),
        recording.Submission([make_interaction(organization_id="nope")], PixelState.ACTIVE),
    ]
    learned: dict[str, bool] = {}
    outcomes = recording.record_ready(
        engine, recording.ready(submissions, now), now, learned=learned
    )
    assert isinstance(outcomes[0], recording.Recorded)
    assert isinstance(outcomes[1], recording.UnknownOrganizations)
    assert learned == {"org-1": True}
