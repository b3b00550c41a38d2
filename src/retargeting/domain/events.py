"""Which Conversions API events fire for an interaction, and exactly what each one says.

The payload follows the spec's CAPI request, corrected where Meta requires more: `action_source`,
unhashed client IP and user agent, SHA-256 `external_id`, and an `event_id` that never carries the
raw visitor id and stays the same for the same logical event so retries deduplicate.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import orjson

from retargeting.domain.pixel import PixelState

MAX_EVENT_AGE_SECONDS = 7 * 24 * 3600  # Meta rejects a whole request holding an older event_time
MAX_CLOCK_SKEW_SECONDS = 60  # how far in the future an event_time may be (callers' clocks drift)

WIDGET_VIEW = "GreetNow_WidgetView"
WIDGET_VIEW_B2B = "GreetNow_WidgetView_B2B"
CALL_STARTED = "GreetNow_CallStarted"
LEAD = "Lead"
CALL_STARTED_B2B = "GreetNow_CallStarted_B2B"
ALL_EVENT_NAMES = (WIDGET_VIEW, WIDGET_VIEW_B2B, CALL_STARTED, LEAD, CALL_STARTED_B2B)


class InteractionKind(enum.StrEnum):
    WIDGET_VIEW = "widget_view"
    CALL_STARTED = "call_started"


class Interaction(NamedTuple):
    """A widget view or call start as the platform's server reports it, already validated.

    A NamedTuple, as immutable as a frozen dataclass but built in a fifth of the time: a batch
    request builds a thousand of them, and a frozen dataclass's `__init__` cost 1.2 us each.
    """

    kind: InteractionKind
    organization_id: str
    visitor_id: str
    page_url: str
    client_ip_address: str
    client_user_agent: str
    event_time: int
    fbp: str | None = None
    fbc: str | None = None
    event_id: str | None = None
    call_id: str | None = None


class QueuedEvent(NamedTuple):
    """One CAPI event and its serialised payload (`events_for`; the ingest path queues
    `event_rows`, their text form)."""

    event_name: str
    event_id: str
    event_time: int
    payload: bytes


def event_names(
    kind: InteractionKind, pixel_state: PixelState, org_enabled: bool
) -> tuple[str, ...]:
    """The spec's "Facebook Events Fired" table; nothing fires unless the pixel is active."""
    if pixel_state is not PixelState.ACTIVE:
        return ()
    if kind is InteractionKind.WIDGET_VIEW:
        return (WIDGET_VIEW, WIDGET_VIEW_B2B) if org_enabled else (WIDGET_VIEW,)
    base = (CALL_STARTED, LEAD)
    return (*base, CALL_STARTED_B2B) if org_enabled else base


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def derive_event_id(interaction: Interaction, visitor_hash: str | None = None) -> str:
    """The caller's id when given; else one that is stable for the logical event.

    Widget views hash the hashed visitor id with the event time, so the id is stable across
    retries of the same report yet reveals nothing about the visitor; call events use the call id.
    `visitor_hash` is `sha256_hex(interaction.visitor_id)` when the caller already has it.
    """
    if interaction.event_id:
        return interaction.event_id
    if interaction.kind is InteractionKind.CALL_STARTED and interaction.call_id:
        return f"gn_call_{interaction.call_id}"
    hashed = visitor_hash or sha256_hex(interaction.visitor_id)
    return f"gn_wv_{sha256_hex(f'{hashed}:{interaction.event_time}')[:32]}"


_WIDGET_CUSTOM_DATA = {"content_name": "GreetNow Widget", "content_category": "Widget Impression"}
_CALL_CUSTOM_DATA = {"content_name": "GreetNow Call", "content_category": "Call Started"}


_BASE_CUSTOM_DATA = {
    InteractionKind.WIDGET_VIEW: _WIDGET_CUSTOM_DATA,
    InteractionKind.CALL_STARTED: _CALL_CUSTOM_DATA,
}


def _custom_data(interaction: Interaction, event_name: str) -> dict[str, str]:
    base = _BASE_CUSTOM_DATA[interaction.kind]
    if _carries_call_id(interaction.kind, event_name) and interaction.call_id:
        return {**base, "call_id": interaction.call_id}
    return base


def _carries_call_id(kind: InteractionKind, event_name: str) -> bool:
    return kind is InteractionKind.CALL_STARTED and event_name != LEAD


def _shared_fields(interaction: Interaction, event_id: str, visitor_hash: str) -> dict[str, Any]:
    """What every event of one interaction says alike: all but its name and custom data."""
    user_data: dict[str, str] = {
        "client_ip_address": interaction.client_ip_address,
        "client_user_agent": interaction.client_user_agent,
        "external_id": visitor_hash,
    }
    if interaction.fbp:
        user_data["fbp"] = interaction.fbp
    if interaction.fbc:
        user_data["fbc"] = interaction.fbc
    return {
        "event_time": interaction.event_time,
        "event_id": event_id,
        "action_source": "website",
        "event_source_url": interaction.page_url,
        "user_data": user_data,
    }


def build_payload(
    interaction: Interaction, event_name: str, event_id: str, visitor_hash: str | None = None
) -> dict[str, Any]:
    """One event as Meta receives it in the request's `data` array."""
    shared = _shared_fields(
        interaction, event_id, visitor_hash or sha256_hex(interaction.visitor_id)
    )
    return {
        "event_name": event_name,
        **shared,
        "custom_data": dict(_custom_data(interaction, event_name)),  # never the shared constant
    }


# A serialised payload is {"event_name": ..., <shared fields>, "custom_data": ...}: the shared
# fields are serialised once per interaction and each event's name and custom data spliced
# around them (an interaction of a B2B organization queues two or three events).
def _closing(custom_data: dict[str, str]) -> str:
    return ',"custom_data":' + orjson.dumps(custom_data).decode() + "}"


def _opening(name: str) -> str:
    return '{"event_name":' + orjson.dumps(name).decode() + ","


# Per (kind, B2B flag): each event's name and the text before and after the shared fields; None
# after them where the custom data carries the interaction's call id.
_Template = tuple[tuple[str, str, str | None], ...]
_TEMPLATES: dict[tuple[InteractionKind, bool], _Template] = {
    (kind, enabled): tuple(
        (
            name,
            _opening(name),
            None if _carries_call_id(kind, name) else _closing(_BASE_CUSTOM_DATA[kind]),
        )
        for name in event_names(kind, PixelState.ACTIVE, enabled)
    )
    for kind in InteractionKind
    for enabled in (False, True)
}


class Prepared(NamedTuple):
    """An interaction's hashes and serialised shared fields: the costly part of its events,
    computed before its transaction, since which events fire waits on the organization's flag
    read inside it."""

    visitor_hash: str
    event_id: str
    shared: str  # the fields every event of the interaction carries, serialised


def prepare(interaction: Interaction, *, serialise: bool = True) -> Prepared:
    """`serialise=False` when no event can fire (the pixel is not active): hashes only."""
    visitor_hash = sha256_hex(interaction.visitor_id)  # once, for the row and every event
    event_id = derive_event_id(interaction, visitor_hash)
    if not serialise:
        return Prepared(visitor_hash, event_id, "")
    shared = orjson.dumps(_shared_fields(interaction, event_id, visitor_hash))[1:-1].decode()
    return Prepared(visitor_hash, event_id, shared)


# (organization id, event name, event id, event time, serialised payload): one queued event as
# the outbox stores it.
EventRow = tuple[str, str, str, int, str]


def event_rows(
    interactions: Sequence[Interaction],
    prepared: Sequence[Prepared],
    pixel_state: PixelState,
    flags: Mapping[str, bool],
) -> list[EventRow]:
    """Every event the interactions queue, their organizations' B2B flags being `flags`; each
    payload is `orjson.dumps(build_payload(...))` as text. One loop with no call per event:
    the ingest path runs it for every event."""
    if pixel_state is not PixelState.ACTIVE:
        return []
    rows: list[EventRow] = []
    append = rows.append
    for i, p in zip(interactions, prepared, strict=True):
        org_id = i.organization_id
        shared = p.shared
        for name, opening, closing in _TEMPLATES[i.kind, flags[org_id]]:
            if closing is None:
                closing = _closing(_custom_data(i, name))
            append((org_id, name, p.event_id, i.event_time, opening + shared + closing))
    return rows


def events_for(
    interaction: Interaction, pixel_state: PixelState, org_enabled: bool
) -> list[QueuedEvent]:
    """The 0 to 3 events one interaction queues, each serialised."""
    rows = event_rows(
        [interaction],
        [prepare(interaction)],
        pixel_state,
        {interaction.organization_id: org_enabled},
    )
    return [
        QueuedEvent(name, event_id, event_time, payload.encode())
        for _, name, event_id, event_time, payload in rows
    ]


def event_time_problem(event_time: int, now: int) -> str | None:
    """Why Meta would refuse this event time, or None when it is acceptable."""
    if event_time > now + MAX_CLOCK_SKEW_SECONDS:
        return "event_time is in the future"
    if event_time < now - MAX_EVENT_AGE_SECONDS:
        return "event_time is older than 7 days"
    return None


def is_expired(event_time: int, now: int) -> bool:
    """An event Meta would refuse for age: the outbox expires it instead of sending it."""
    return event_time < now - MAX_EVENT_AGE_SECONDS


def request_body(payloads: list[bytes], access_token: str, test_event_code: str = "") -> bytes:
    """The Graph API request body, concatenated from payloads serialised at enqueue.

    The access token travels in the body, never in the URL, because URLs end up in logs.
    """
    body = b'{"data":[' + b",".join(payloads) + b'],"access_token":' + orjson.dumps(access_token)
    if test_event_code:
        body += b',"test_event_code":' + orjson.dumps(test_event_code)
    return body + b"}"
