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
