"""The ingest bodies' rules: what Meta would reject is refused up front, naming the field."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from retargeting.domain.events import InteractionKind
from retargeting.web import schemas
from retargeting.web.schemas_admin import PixelIn, TestEventIn
from tests.support import api_bodies
from tests.support.api_bodies import FBC, FBP

DAY = 86_400


def errors_of(model: type[BaseModel], body: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    return [dict(e) for e in caught.value.errors()]


def locs_of(model: type[BaseModel], body: dict[str, Any]) -> set[tuple[str | int, ...]]:
    return {tuple(e["loc"]) for e in errors_of(model, body)}


def test_a_valid_widget_view_becomes_an_interaction() -> None:
    body = api_bodies.widget_view(fbp=FBP, fbc=FBC, event_id="ev-1")
    interaction = schemas.WidgetViewIn.model_validate(body).to_interaction(123)
    assert interaction.kind is InteractionKind.WIDGET_VIEW
    assert interaction.event_time == body["event_time"]
    assert (interaction.fbp, interaction.fbc, interaction.event_id) == (FBP, FBC, "ev-1")
    assert interaction.call_id is None


def test_event_time_defaults_to_now() -> None:
    body = api_bodies.widget_view(event_time=None)
    assert schemas.WidgetViewIn.model_validate(body).to_interaction(1_700_000_000).event_time == (
        1_700_000_000
    )


def test_call_started_carries_its_call_id() -> None:
    model = schemas.CallStartedIn.model_validate(api_bodies.call_started(call_id="c:9.x_y-z"))
    interaction = model.to_interaction(1)
    assert interaction.kind is InteractionKind.CALL_STARTED
    assert interaction.call_id == "c:9.x_y-z"


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("2001:DB8::1", "2001:db8::1"),
        ("::ffff:198.51.100.4", "198.51.100.4"),
    ],
)
def test_ip_addresses_are_normalised(given: str, stored: str) -> None:
    body = api_bodies.widget_view(client_ip_address=given)
    assert schemas.WidgetViewIn.model_validate(body).client_ip_address == stored


@pytest.mark.parametrize(
    "address", ["1.2.3", "256.1.1.1", "localhost", "", " 1.2.3.4", "fe80::1%eth0", "1.2.3.4/32"]
)
def test_bad_ip_addresses_are_refused(address: str) -> None:
    body = api_bodies.widget_view(client_ip_address=address)
    assert locs_of(schemas.WidgetViewIn, body) == {("client_ip_address",)}


@pytest.mark.parametrize(
    "url",
    [
        "customer.example/pricing",
        "/pricing",
        "ftp://customer.example/",
        "javascript:alert(1)",
        "https://",
        "https:///path",
        "https://exa mple.com/",
        "https://example.com/\n",
        "http://[::1",
        "https://example.com/" + "a" * 2048,
        "",
    ],
)
def test_page_url_must_be_an_absolute_http_url(url: str) -> None:
    body = api_bodies.widget_view(page_url=url)
    assert locs_of(schemas.WidgetViewIn, body) == {("page_url",)}


@pytest.mark.parametrize(
    "url", ["http://example.com", "HTTPS://Example.com/a?b=c#d", "https://[2001:db8::1]:8443/x"]
)
def test_page_url_accepts_http_and_https(url: str) -> None:
    body = api_bodies.widget_view(page_url=url)
    assert schemas.WidgetViewIn.model_validate(body).page_url == url  # kept as given


@pytest.mark.parametrize(
    ("offset", "problem"),
    [(-8 * DAY, "older than 7 days"), (+120, "in the future"), (-10 * 365 * DAY, "older")],
)
def test_event_time_outside_metas_window_is_refused(offset: int, problem: str) -> None:
    body = api_bodies.widget_view(event_time=int(time.time()) + offset)
    [error] = errors_of(schemas.WidgetViewIn, body)
    assert error["loc"] == ("event_time",)
    assert problem in error["msg"]


@pytest.mark.parametrize("offset", [-6 * DAY, -1, 0, 30])
def test_event_time_inside_the_window_is_accepted(offset: int) -> None:
    body = api_bodies.widget_view(event_time=int(time.time()) + offset)
    schemas.WidgetViewIn.model_validate(body)


@pytest.mark.parametrize("event_time", ["1700000000", 1.7e9, True, None])
def test_event_time_must_be_an_integer(event_time: Any) -> None:
    body = {**api_bodies.widget_view(), "event_time": event_time}
    if event_time is None:
        schemas.WidgetViewIn.model_validate(body)  # null means "now"
        return
    assert locs_of(schemas.WidgetViewIn, body) == {("event_time",)}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("fbp", "fb.1.1596403881668"),
        ("fbp", "fb.1.abc.1116446470"),
        ("fbp", "_fbp=fb.1.1596403881668.1116446470"),
        ("fbp", "fb.1.1596403881668.not-a-number"),
        ("fbc", "fb.1.1554763741205"),
        ("fbc", "fb.1.1554763741205.has space"),
        ("fbc", "IwAR2F4-dbP0l7Mn1IawQQGCINEz7PYXQvwjNwB"),
        ("fbc", ""),
    ],
)
def test_fbp_and_fbc_must_follow_metas_format(field: str, value: str) -> None:
    body = api_bodies.widget_view(**{field: value})
    assert locs_of(schemas.WidgetViewIn, body) == {(field,)}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("fbp", "fb.2.1596403881668.1116446470"),
        ("fbp", "fb.1.1596403881668.1116446470.AQYBAQIA"),
        ("fbc", "fb.0.1554763741205.AbCdEfGhIjKlMnOpQrStUvWxYz1234567890"),
        ("fbc", "fb.1.1554763741205.IwAR2F4_dbP0.Bg"),
    ],
)
def test_well_formed_cookies_are_accepted(field: str, value: str) -> None:
    schemas.WidgetViewIn.model_validate(api_bodies.widget_view(**{field: value}))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("organization_id", ""),
        ("organization_id", "org/1"),
        ("organization_id", "x" * 101),
        ("visitor_id", ""),
        ("visitor_id", "   "),
        ("client_user_agent", ""),
        ("client_user_agent", "x" * 1001),
        ("client_user_agent", "Mozilla\x00"),
        ("event_id", ""),
        ("event_id", "x" * 201),
        ("event_id", "id\x00"),
    ],
)
def test_field_limits(field: str, value: str) -> None:
    body = api_bodies.widget_view(**{field: value})
    assert locs_of(schemas.WidgetViewIn, body) == {(field,)}


@pytest.mark.parametrize("call_id", ["", "a b", "a/b", "x" * 201])
def test_call_id_rules(call_id: str) -> None:
    body = api_bodies.call_started(call_id=call_id)
    assert locs_of(schemas.CallStartedIn, body) == {("call_id",)}


def test_call_started_needs_a_call_id() -> None:
    body = api_bodies.widget_view()
    assert locs_of(schemas.CallStartedIn, body) == {("call_id",)}


def test_unknown_fields_are_refused_so_typos_are_not_lost() -> None:
    body = {**api_bodies.widget_view(), "fcb": FBC}
    assert locs_of(schemas.WidgetViewIn, body) == {("fcb",)}


def test_a_batch_holds_both_kinds() -> None:
    body = {
        "events": [
            api_bodies.batch_item("widget_view"),
            api_bodies.batch_item("call_started", call_id="c-2"),
        ]
    }
    batch = schemas.BatchIn.model_validate(body)
    assert [e.kind for e in batch.events] == [
        InteractionKind.WIDGET_VIEW,
        InteractionKind.CALL_STARTED,
    ]


@pytest.mark.parametrize("count", [0, schemas.MAX_BATCH_EVENTS + 1])
def test_batch_size_limits(count: int) -> None:
    body = {"events": [api_bodies.batch_item()] * count}
    assert locs_of(schemas.BatchIn, body) == {("events",)}


def test_a_batch_of_the_maximum_size_is_accepted() -> None:
    body = {"events": [api_bodies.batch_item()] * schemas.MAX_BATCH_EVENTS}
    assert len(schemas.BatchIn.model_validate(body).events) == schemas.MAX_BATCH_EVENTS


def test_batch_errors_name_the_event_index() -> None:
    body = {"events": [api_bodies.batch_item(), api_bodies.batch_item(page_url="nope")]}
    assert locs_of(schemas.BatchIn, body) == {("events", 1, "widget_view", "page_url")}


@pytest.mark.parametrize("kind", ["pageview", None])
def test_batch_items_need_a_known_type(kind: str | None) -> None:
    item = {**api_bodies.widget_view(), "type": kind}
    assert locs_of(schemas.BatchIn, {"events": [item]}) == {("events", 0)}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "   "),
        ("name", "x" * 301),
        ("name", "Acme\x00"),
        ("status", ""),
        ("status", "a\tb"),
    ],
)
def test_organization_fields(field: str, value: str) -> None:
    body = api_bodies.organization(**{field: value})
    assert locs_of(schemas.OrganizationIn, body) == {(field,)}


def test_organization_fields_are_trimmed() -> None:
    org = schemas.OrganizationIn.model_validate({"name": "  Acme  ", "status": " active"})
    assert (org.name, org.status) == ("Acme", "active")


def test_pixel_enabled_must_be_a_boolean() -> None:
    body = {"pixel_id": "1", "test_event_code": "", "enabled": "true"}
    assert locs_of(PixelIn, body) == {("enabled",)}


def test_test_event_code_override_is_checked() -> None:
    assert locs_of(TestEventIn, {"test_event_code": "TEST 1"}) == {("test_event_code",)}
    assert TestEventIn.model_validate({"test_event_code": " TEST1 "}).test_event_code == "TEST1"
