from __future__ import annotations

import hashlib
import itertools

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from retargeting.domain import events
from retargeting.domain.events import Interaction, InteractionKind
from retargeting.domain.pixel import PixelState

NOW = 1_780_000_000


def interaction(**overrides: object) -> Interaction:
    base = Interaction(
        kind=InteractionKind.WIDGET_VIEW,
        organization_id="org-1",
        visitor_id="visitor-42",
        page_url="https://customer.example/pricing",
        client_ip_address="203.0.113.7",
        client_user_agent="Mozilla/5.0 Test",
        event_time=NOW,
    )
    return base._replace(**overrides)


EXPECTED = {
    (InteractionKind.WIDGET_VIEW, False): ("GreetNow_WidgetView",),
    (InteractionKind.WIDGET_VIEW, True): ("GreetNow_WidgetView", "GreetNow_WidgetView_B2B"),
    (InteractionKind.CALL_STARTED, False): ("GreetNow_CallStarted", "Lead"),
    (InteractionKind.CALL_STARTED, True): (
        "GreetNow_CallStarted",
        "Lead",
        "GreetNow_CallStarted_B2B",
    ),
}


@pytest.mark.parametrize(
    ("kind", "state", "org_enabled"),
    list(itertools.product(InteractionKind, PixelState, [False, True])),
)
def test_events_fired_table(kind: InteractionKind, state: PixelState, org_enabled: bool) -> None:
    """Every combination of the spec's table, scenarios 1-5."""
    names = events.event_names(kind, state, org_enabled)
    if state is not PixelState.ACTIVE:
        assert names == ()
    else:
        assert names == EXPECTED[(kind, org_enabled)]


def test_widget_view_payload_follows_meta() -> None:
    [queued] = events.events_for(
        interaction(fbp="fb.1.1700000000.123", fbc=None), PixelState.ACTIVE, False
    )
    payload = orjson.loads(queued.payload)
    assert payload == {
        "event_name": "GreetNow_WidgetView",
        "event_time": NOW,
        "event_id": queued.event_id,
        "action_source": "website",
        "event_source_url": "https://customer.example/pricing",
        "user_data": {
            "client_ip_address": "203.0.113.7",
            "client_user_agent": "Mozilla/5.0 Test",
            "external_id": hashlib.sha256(b"visitor-42").hexdigest(),
            "fbp": "fb.1.1700000000.123",
        },
        "custom_data": {"content_name": "GreetNow Widget", "content_category": "Widget Impression"},
    }


def test_call_events_carry_call_id_except_lead() -> None:
    call = interaction(kind=InteractionKind.CALL_STARTED, call_id="call-7")
    queued = events.events_for(call, PixelState.ACTIVE, True)
    custom = {q.event_name: orjson.loads(q.payload)["custom_data"] for q in queued}
    base = {"content_name": "GreetNow Call", "content_category": "Call Started"}
    assert custom == {
        "GreetNow_CallStarted": {**base, "call_id": "call-7"},
        "Lead": base,
        "GreetNow_CallStarted_B2B": {**base, "call_id": "call-7"},
    }
    assert {q.event_id for q in queued} == {"gn_call_call-7"}


def test_caller_event_id_wins() -> None:
    [queued] = events.events_for(interaction(event_id="abc-1"), PixelState.ACTIVE, False)
    assert queued.event_id == "abc-1"


def test_derived_event_id_is_stable_and_distinct() -> None:
    first = events.derive_event_id(interaction())
    assert first == events.derive_event_id(interaction())
    assert first != events.derive_event_id(interaction(event_time=NOW + 1))
    assert first != events.derive_event_id(interaction(visitor_id="visitor-43"))


@given(visitor=st.text(min_size=1, max_size=200), event_time=st.integers(0, 2**40))
def test_event_id_never_contains_the_visitor_id(visitor: str, event_time: int) -> None:
    item = interaction(visitor_id=visitor, event_time=event_time)
    event_id = events.derive_event_id(item)
    # The id is a digest of the visitor's hash: the raw id cannot appear in it.
    hashed = hashlib.sha256(visitor.encode()).hexdigest()
    digest = hashlib.sha256(f"{hashed}:{event_time}".encode()).hexdigest()
    assert event_id == f"gn_wv_{digest[:32]}"
    for queued in events.events_for(item, PixelState.ACTIVE, True):
        payload = orjson.loads(queued.payload)
        assert payload["user_data"]["external_id"] == hashlib.sha256(visitor.encode()).hexdigest()
        assert {
            "event_name",
            "event_time",
            "action_source",
            "user_data",
            "event_source_url",
        } <= set(payload)


@pytest.mark.parametrize(
    ("offset", "problem"),
    [
        (0, None),
        (-7 * 86400 + 1, None),
        (-7 * 86400 - 1, "event_time is older than 7 days"),
        (60, None),
        (61, "event_time is in the future"),
    ],
)
def test_event_time_window(offset: int, problem: str | None) -> None:
    assert events.event_time_problem(NOW + offset, NOW) == problem


def test_request_body_puts_token_in_body() -> None:
    body = events.request_body([b'{"a":1}', b'{"b":2}'], "tok", "TEST1")
    assert orjson.loads(body) == {
        "data": [{"a": 1}, {"b": 2}],
        "access_token": "tok",
        "test_event_code": "TEST1",
    }
    assert "test_event_code" not in orjson.loads(events.request_body([b"{}"], "tok"))
