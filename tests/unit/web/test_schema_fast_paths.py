"""The fast paths for URLs and IPv4 addresses agree with the general rules on every input."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import example, given
from hypothesis import strategies as st
from pydantic_core import PydanticCustomError

from retargeting.web import schemas

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
