"""The fast paths for URLs and IPv4 addresses agree with the general rules on every input."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from typing import Any

from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from retargeting.web import schemas
from retargeting.web.schemas_common_case import CommonWidgetViewIn

URLISH = st.one_of(
    st.text(max_size=40),
    st.builds(
        lambda scheme, host, rest: f"{scheme}://{host}{rest}",
        st.sampled_from(["http", "https", "HTTPS", "ftp", "http:", ""]),
        st.text("abcXYZ019.-_@:[]ä ", max_size=20),
        st.text("/?#:%<>\\\"' \x00\x7fé" + "abc019", max_size=20),
    ),
)
IPISH = st.one_of(
    st.ip_addresses().map(str),
    st.text("0123456789.", max_size=20),
    st.text("0123456789abcdef.:%", max_size=30),
)


def outcome(rule: Callable[[str], str], value: str) -> tuple[str, str]:
    try:
        return ("accepted", rule(value))
    except PydanticCustomError as error:
        return ("refused", error.type)


@given(URLISH)
@example("http://a:99999/")
@example("HTTP://HOST.EXAMPLE")
@example("https://-/")
@example("http://host\\path")
@example("http\u017f://a.example/")  # a long s, which Unicode case folding takes for an s
def test_the_url_fast_path_agrees_with_the_parse(value: str) -> None:
    assert outcome(schemas._absolute_http_url, value) == outcome(
        schemas._absolute_http_url_parsed, value
    )


@given(IPISH)
@example("01.2.3.4")
@example("255.255.255.255")
@example("256.0.0.1")
@example("0.0.0.0")
@example("1.2.3.4.")
def test_the_ipv4_fast_path_agrees_with_ipaddress(value: str) -> None:
    assert outcome(schemas._ip_address, value) == outcome(schemas._ip_address_parsed, value)


TEXTISH = st.one_of(
    st.text(max_size=30),
    st.sampled_from([" ", "\t\n", "a\x00b", "\u2028", "\u00a0", "é"]),
)
COOKIEISH = st.one_of(
    st.sampled_from(["fb.1.1596403881668.1116446470", "fb.1.1.x", "fb.1.2.3.ab-c_d", "x"]),
    st.text("fb.0123456789abc_-", max_size=30),
)
NOW = int(time.time())
COMMON: dict[str, Any] = {
    "visitor_id": "v",
    "page_url": "https://a.example/",
    "client_ip_address": "1.2.3.4",
    "client_user_agent": "ua",
    "fbp": None,
    "fbc": None,
    "event_time": None,
    "event_id": None,
}


def mostly(good: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Three draws in four from `good`, so that a fair share of whole bodies is valid."""
    return st.one_of(good, good, good, other)


@given(
    visitor_id=mostly(st.text(min_size=1, max_size=10), TEXTISH),
    page_url=mostly(
        st.sampled_from(["https://a.example/p?q=1#f", "HTTP://HOST.EXAMPLE", "http://[::1]/"]),
        URLISH,
    ),
    client_ip_address=mostly(st.ip_addresses().map(str), IPISH),
    client_user_agent=mostly(st.text(min_size=1, max_size=10), TEXTISH),
    fbp=mostly(st.none(), COOKIEISH),
    fbc=mostly(st.none(), COOKIEISH),
    event_time=mostly(st.none(), st.integers(NOW - 8 * 86_400, NOW + 120)),
    event_id=mostly(st.none(), TEXTISH),
)
@settings(max_examples=400)  # about one body in ten is valid
@example(**COMMON)
@example(**{**COMMON, "client_ip_address": "::ffff:1.2.3.4"})
@example(**{**COMMON, "client_ip_address": "01.2.3.4"})
@example(**{**COMMON, "page_url": "http://a b/"})
@example(**{**COMMON, "client_user_agent": " "})
@example(**{**COMMON, "client_user_agent": "a\x7f"})
@example(**{**COMMON, "visitor_id": "\t"})
@example(**{**COMMON, "fbp": "fb.1.2"})
@example(**{**COMMON, "fbc": "x"})
@example(**{**COMMON, "event_time": NOW + 61})
@example(**{**COMMON, "event_time": NOW - 8 * 86_400})
@example(**{**COMMON, "event_id": "a\nb"})
def test_the_shortcuts_accept_a_subset_of_the_rules_with_the_same_values(
    **fields: Any,
) -> None:
    """Two shortcuts, each held to the rules. The model validator's one expression: whatever
    it lets through, each field's own rule accepts as it is (nothing left to make canonical).
    The common-case model (`schemas_common_case`): whatever it accepts, the model accepts with
    the same values."""
    body = {"organization_id": "org-1", **{k: v for k, v in fields.items() if v is not None}}
    try:
        common: schemas.WidgetViewIn | None = CommonWidgetViewIn.model_validate(body)
    except ValidationError:
        common = None
    try:
        model = schemas.WidgetViewIn.model_validate(body)
    except ValidationError:
        event("refused")
        assert common is None
        return
    event("accepted, common case" if common else "accepted, not the common case")
    before = dict(model.__dict__)
    model._apply_each_rule()
    assert model.__dict__ == before
    assert (
        model.client_ip_address
        == outcome(schemas._ip_address_parsed, fields["client_ip_address"])[1]
    )
    if common is not None:
        assert common.model_dump() == model.model_dump()
        assert common.to_interaction(1) == model.to_interaction(1)


@given(st.ip_addresses().map(str) | IPISH | st.ip_addresses().map(lambda a: a.exploded))
@example("2001:db8::1")
@example("2001:db8:0:1::1")  # a zero group besides the "::" run: not taken as common
@example("1:0:0:1::1")  # the longer zero run is not the compressed one
@example("::ffff:102:304")  # IPv4-mapped, in hex
@example("2001:DB8::1")
def test_a_common_case_address_is_written_as_ipaddress_writes_it(address: str) -> None:
    body = {**COMMON, "organization_id": "org-1", "client_ip_address": address}
    body = {k: v for k, v in body.items() if v is not None}
    try:
        common = CommonWidgetViewIn.model_validate(body)
    except ValidationError:
        return
    assert common.client_ip_address == str(ipaddress.ip_address(address))
