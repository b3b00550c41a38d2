"""Properties of the domain rules over generated input: what must hold for every interaction.

The example tests beside this file pin the spec's rows; these let hypothesis look for the
interaction, pixel state or Meta answer that breaks a rule (hashing, event ids, required fields,
the events table, error handling, the request body).
"""

from __future__ import annotations

import hashlib
import ipaddress

import orjson
from hypothesis import given
from hypothesis import strategies as st

from retargeting.domain import events
from retargeting.domain.delivery import (
    PERMISSION_CODES,
    RATE_LIMIT_CODES,
    TOKEN_CODES,
    Disposition,
    GraphError,
    classify,
)
from retargeting.domain.events import Interaction, InteractionKind
from retargeting.domain.pixel import (
    OrgToggleRefused,
    PixelSettings,
    PixelState,
    check_org_toggle,
    mask_token,
)
from tests.fakes import graph_rules

NOW = 1_780_000_000
ID_TEXT = st.text("abcdefghijklmnopqrstuvwxyz0123456789._:-", min_size=1, max_size=40)
IPS = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda address: str(ipaddress.IPv6Address(address))),
)


@st.composite
def interactions(draw: st.DrawFn) -> Interaction:
    kind = draw(st.sampled_from(InteractionKind))
    return Interaction(
        kind=kind,
        organization_id=draw(ID_TEXT),
        visitor_id=draw(st.text(min_size=1, max_size=100)),
        page_url="https://customer.example/" + draw(ID_TEXT),
        client_ip_address=draw(IPS),
        client_user_agent="Mozilla/5.0 " + draw(st.text(min_size=1, max_size=60)),
        event_time=draw(st.integers(NOW - events.MAX_EVENT_AGE_SECONDS, NOW)),
        fbp=draw(st.none() | st.just("fb.1.1596403881668.1116446470")),
        fbc=draw(st.none() | st.just("fb.1.1554763741205.AbCdEf")),
        event_id=draw(st.none() | ID_TEXT),
        call_id=draw(ID_TEXT) if kind is InteractionKind.CALL_STARTED else None,
    )


@given(interactions(), st.sampled_from(PixelState), st.booleans())
def test_queued_events_follow_the_table_and_share_one_id(
    item: Interaction, state: PixelState, org_enabled: bool
) -> None:
    queued = events.events_for(item, state, org_enabled)
    assert tuple(q.event_name for q in queued) == events.event_names(item.kind, state, org_enabled)
    if state is not PixelState.ACTIVE:
        assert queued == []
        return
    assert len({q.event_id for q in queued}) == 1
    assert {q.event_time for q in queued} == {item.event_time}
    base = events.WIDGET_VIEW if item.kind is InteractionKind.WIDGET_VIEW else events.CALL_STARTED
    assert queued[0].event_name == base  # the all-visitors audience always gets the event
    assert any(q.event_name.endswith("_B2B") for q in queued) == org_enabled


@given(interactions())
def test_every_payload_meets_metas_rules(item: Interaction) -> None:
    """Required fields, hashing and formats, checked by the stand-in's reading of Meta's docs."""
    for index, queued in enumerate(events.events_for(item, PixelState.ACTIVE, True)):
        payload = orjson.loads(queued.payload)
        assert graph_rules.event_problem(index, payload, NOW) is None
        assert payload["action_source"] == "website"
        user_data = payload["user_data"]
        assert user_data["external_id"] == hashlib.sha256(item.visitor_id.encode()).hexdigest()
        assert user_data["client_ip_address"] == item.client_ip_address  # never hashed
        assert user_data["client_user_agent"] == item.client_user_agent
        assert ("fbp" in user_data) == (item.fbp is not None)
        assert ("fbc" in user_data) == (item.fbc is not None)
        # Only its hash leaves; the event id carries it only if the caller chose it as the id.
        assert "visitor_id" not in user_data
        assert user_data["external_id"] != item.visitor_id
        assert payload["event_id"] != item.visitor_id or item.event_id == item.visitor_id
        custom = payload["custom_data"]
        carries_call_id = "call_id" in custom
        assert carries_call_id == (
            item.kind is InteractionKind.CALL_STARTED and queued.event_name != events.LEAD
        )


@given(interactions(), st.booleans())
def test_each_spliced_payload_is_exactly_its_event_serialised(
    item: Interaction, org_enabled: bool
) -> None:
    """events_for splices one serialisation into each event; byte for byte build_payload's."""
    for queued in events.events_for(item, PixelState.ACTIVE, org_enabled):
        expected = events.build_payload(item, queued.event_name, queued.event_id)
        assert queued.payload == orjson.dumps(expected)
        assert list(orjson.loads(queued.payload)) == list(expected)  # keys in the same order


@given(interactions())
def test_event_ids_are_stable_and_never_the_visitor(item: Interaction) -> None:
    event_id = events.derive_event_id(item)
    assert event_id == events.derive_event_id(item)  # a retry keeps its id
    assert 0 < len(event_id) <= 200
    if item.event_id:
        assert event_id == item.event_id
    elif item.kind is InteractionKind.CALL_STARTED:
        assert event_id == f"gn_call_{item.call_id}"
    else:
        hashed = hashlib.sha256(item.visitor_id.encode()).hexdigest()
        digest = hashlib.sha256(f"{hashed}:{item.event_time}".encode()).hexdigest()
        assert event_id == f"gn_wv_{digest[:32]}"


@given(st.text(min_size=1, max_size=50), st.text(min_size=1, max_size=50), st.integers(0, 2**40))
def test_distinct_widget_views_get_distinct_ids(first: str, second: str, time: int) -> None:
    def view(visitor: str, at: int) -> Interaction:
        return Interaction(
            InteractionKind.WIDGET_VIEW, "org", visitor, "https://x.example/", "::1", "UA", at
        )

    if first != second:
        assert events.derive_event_id(view(first, time)) != events.derive_event_id(
            view(second, time)
        )
    assert events.derive_event_id(view(first, time)) != events.derive_event_id(
        view(first, time + 1)
    )


@given(st.integers(NOW - 30 * 86400, NOW + 86400))
def test_event_time_rule_matches_metas_window(event_time: int) -> None:
    acceptable = NOW - events.MAX_EVENT_AGE_SECONDS <= event_time <= NOW + 60
    assert (events.event_time_problem(event_time, NOW) is None) == acceptable
    assert events.is_expired(event_time, NOW) == (event_time < NOW - events.MAX_EVENT_AGE_SECONDS)


@given(
    st.lists(
        st.dictionaries(ID_TEXT, st.integers(-(2**53), 2**53) | ID_TEXT, max_size=4), max_size=20
    ),
    st.text(max_size=300),
    st.text(max_size=20),
)
def test_the_request_body_is_the_payloads_with_the_token_inside(
    payloads: list[dict[str, object]], token: str, test_event_code: str
) -> None:
    body = orjson.loads(
        events.request_body([orjson.dumps(p) for p in payloads], token, test_event_code)
    )
    assert body["data"] == payloads
    assert body["access_token"] == token
    assert body.get("test_event_code", "") == test_event_code


@given(
    code=st.none() | st.integers(-10, 100_000),
    subcode=st.none() | st.integers(0, 3_000_000),
    status=st.none() | st.integers(100, 599),
    transient=st.booleans(),
)
def test_every_meta_answer_has_one_disposition(
    code: int | None, subcode: int | None, status: int | None, transient: bool
) -> None:
    error = GraphError("m", code, subcode, is_transient=transient, http_status=status)
    disposition = classify(error)
    assert disposition is not Disposition.DELIVERED  # an error is never a delivery
    if code in TOKEN_CODES or code in PERMISSION_CODES:
        assert disposition is Disposition.PAUSE  # nothing can succeed: stop and tell the admin
    elif code in RATE_LIMIT_CODES:
        assert disposition is Disposition.RATE_LIMITED
    elif code is None and (status is None or status >= 500):
        assert disposition is Disposition.RETRY  # a transport failure or a 5xx page


@given(st.sampled_from(PixelState), st.booleans())
def test_an_org_can_be_switched_on_only_while_the_pixel_is_active(
    state: PixelState, turn_on: bool
) -> None:
    try:
        check_org_toggle(state, turn_on)
    except OrgToggleRefused:
        refused = True
    else:
        refused = False
    assert refused == (turn_on and state is not PixelState.ACTIVE)


@given(st.text(max_size=300))
def test_a_token_is_never_shown_beyond_its_last_four(token: str) -> None:
    masked = mask_token(token)
    assert len(masked) <= 5
    if len(token) > 8:
        assert masked == "…" + token[-4:]
    settings = PixelSettings(pixel_id="1", access_token=token, enabled=True)
    if len(token) > 8:
        assert token not in repr(settings)
