"""The ingest bodies' common case, checked by pydantic's core alone.

Nearly every event carries a plain http(s) URL, an IPv4 or canonical IPv6 address and Meta's
cookie formats. Each model here is its `schemas` model with those rules as Rust regexes in the
fields' constraints, so that a valid body is checked without one regex call in Python per field
(they were a third of a batch event's validation). It accepts a subset of what its model accepts,
with the same values; anything else it refuses, and the route validates the body again with
the model itself, which accepts the rarer shapes or answers with each field's own error
(`web/ingest_route.py`). tests/unit/web/test_schema_fast_paths.py holds the subset.
"""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import BaseModel, Field, model_validator
from pydantic_core import PydanticCustomError

from retargeting.web import schemas
from retargeting.web.schemas import (
    CANONICAL_IPV4_PATTERN,
    FBC_PATTERN,
    FBP_PATTERN,
    MAX_BATCH_EVENTS,
    MAX_COOKIE_LENGTH,
    MAX_URL_LENGTH,
    PLAIN_HTTP_URL_PATTERN,
)


def _canonical_ipv6_pattern() -> str:
    """IPv6 addresses as `ipaddress` writes them, those without a zero group but the `::` run.

    Lowercase, no leading zeros, `::` for at least two zero groups and no other zero group (so
    it is the longest run, as RFC 5952 wants), and a first group that is not zero: what starts
    with zeros (IPv4-mapped, IPv4-compatible, loopback) goes through the general rule.
    """
    group = "[1-9a-f][0-9a-f]{0,3}"
    forms = [f"{group}(?::{group}){{7}}"]
    for before in range(1, 7):  # groups before the "::"; at most 6 written in all
        head = f"{group}(?::{group}){{{before - 1}}}::"
        after = 6 - before
        forms.append(head if after == 0 else f"{head}(?:{group}(?::{group}){{0,{after - 1}}})?")
    return "|".join(forms)


def _whole(pattern: str) -> str:
    return f"^(?:{pattern})$"  # pydantic searches; anchored, it must match the whole value


_URL = _whole(PLAIN_HTTP_URL_PATTERN)
_IP = _whole(f"{CANONICAL_IPV4_PATTERN}|{_canonical_ipv6_pattern()}")
_FBP = _whole(FBP_PATTERN)
_FBC = _whole(FBC_PATTERN)


class _CommonCase(BaseModel):
    """The fields whose common shape is a Rust regex, and the remaining rules, which need no
    regex, in one validator that only says yes or no (the errors are the model's to give)."""

    page_url: str = Field(min_length=1, max_length=MAX_URL_LENGTH, pattern=_URL)
    client_ip_address: str = Field(max_length=100, pattern=_IP)
    fbp: str | None = Field(default=None, max_length=MAX_COOKIE_LENGTH, pattern=_FBP)
    fbc: str | None = Field(default=None, max_length=MAX_COOKIE_LENGTH, pattern=_FBC)

    @model_validator(mode="after")
    def _meets_metas_rules(self) -> Self:
        if schemas.rules_without_regex_hold(self.__dict__):
            return self
        raise PydanticCustomError("uncommon", "not the common case")


class CommonWidgetViewIn(_CommonCase, schemas.WidgetViewIn):
    pass


class CommonCallStartedIn(_CommonCase, schemas.CallStartedIn):
    pass


class CommonBatchWidgetView(_CommonCase, schemas.BatchWidgetView):
    pass


class CommonBatchCallStarted(_CommonCase, schemas.BatchCallStarted):
    pass


class CommonBatchIn(schemas.BatchIn):
    # A subset of the items BatchIn holds, which mypy cannot see through a list.
    events: list[
        Annotated[CommonBatchWidgetView | CommonBatchCallStarted, Field(discriminator="type")]
    ] = Field(min_length=1, max_length=MAX_BATCH_EVENTS)  # type: ignore[assignment]


# Each ingest body model and its common case.
COMMON_CASE_OF: dict[type[BaseModel], type[BaseModel]] = {
    schemas.WidgetViewIn: CommonWidgetViewIn,
    schemas.CallStartedIn: CommonCallStartedIn,
    schemas.BatchIn: CommonBatchIn,
}
