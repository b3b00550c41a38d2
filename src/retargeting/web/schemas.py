"""Request and response bodies of the ingest API (the platform's servers), validated cheaply.

These run on the hot path, so every check is a length bound, one compiled regex or one stdlib
parse. What Meta would reject (a relative URL, a malformed IP, a stale event_time, a bad fbc) is
refused here with a 422 naming the field, so the caller learns at once instead of the event
failing days later in the outbox. Models are strict (no "1" for 1, no "true" for true) and forbid
unknown fields, so a misspelt optional field such as `fcb` is an error rather than silently lost.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from retargeting.db import orgs
from retargeting.domain import events
from retargeting.domain.events import Interaction, InteractionKind

MAX_BATCH_EVENTS = 1000  # one batch request = one transaction; keeps each commit short
MAX_URL_LENGTH = 2048
MAX_USER_AGENT_LENGTH = 1000
MAX_VISITOR_ID_LENGTH = 256
MAX_EVENT_ID_LENGTH = 200  # the outbox column's size
MAX_COOKIE_LENGTH = 600

ID_CHARACTERS = r"[A-Za-z0-9._:-]"
ORG_ID_PATTERN = rf"^{ID_CHARACTERS}+$"
# Meta's formats: fb.<subdomainIndex>.<creationTime ms>.<random number | fbclid>, optionally with
# the ".<appendix>" that Meta's parameter builder adds.
FBP_PATTERN = r"fb\.[0-9]{1,2}\.[0-9]{1,16}\.[0-9]{1,32}(?:\.[A-Za-z0-9_-]{1,64})?"
FBC_PATTERN = r"fb\.[0-9]{1,2}\.[0-9]{1,16}\.[A-Za-z0-9_-]{1,500}(?:\.[A-Za-z0-9_-]{1,64})?"
_FBP = re.compile(FBP_PATTERN)
_FBC = re.compile(FBC_PATTERN)

STRICT = ConfigDict(strict=True, extra="forbid", frozen=True)


# The shapes nearly every request carries, accepted without the general parse (urlsplit and
# ipaddress were 80% of a batch's validation time). Each accepts a subset of what the general
# rule accepts, returning the same value; tests/unit/web/test_schema_fast_paths.py checks that.
# Letter by letter, not (?i:https?): Unicode case folding would let "http\u017f" (a long s) through.
PLAIN_HTTP_URL_PATTERN = r"[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:[/?#][!-~]*)?"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
CANONICAL_IPV4_PATTERN = rf"(?:{_OCTET}\.){{3}}{_OCTET}"
_PLAIN_HTTP_URL = re.compile(PLAIN_HTTP_URL_PATTERN)
_CANONICAL_IPV4 = re.compile(CANONICAL_IPV4_PATTERN)


def _absolute_http_url(value: str) -> str:
    if _PLAIN_HTTP_URL.fullmatch(value):
        return value
    return _absolute_http_url_parsed(value)


def _absolute_http_url_parsed(value: str) -> str:
    if " " in value or not value.isprintable():
        raise PydanticCustomError("url_invalid", "must not contain spaces or control characters")
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        parts = urlsplit("")
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise PydanticCustomError("url_invalid", "must be an absolute http:// or https:// URL")
    return value


def _ip_address(value: str) -> str:
    """Normalised, so one address is always spelt one way (IPv4-mapped IPv6 becomes IPv4)."""
    if _CANONICAL_IPV4.fullmatch(value):
        return value  # already how ipaddress would spell it
    return _ip_address_parsed(value)


def _ip_address_parsed(value: str) -> str:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise PydanticCustomError("ip_invalid", "must be an IPv4 or IPv6 address") from None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            raise PydanticCustomError("ip_invalid", "must not carry an IPv6 zone (%...)")
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
    return str(address)


def _fbp(value: str) -> str:
    if not _FBP.fullmatch(value):
        raise PydanticCustomError(
            "fbp_invalid", "must look like fb.1.1596403881668.1116446470 (Meta's _fbp cookie)"
        )
    return value


def _fbc(value: str) -> str:
    if not _FBC.fullmatch(value):
        raise PydanticCustomError(
            "fbc_invalid", "must look like fb.1.1554763741205.<fbclid> (Meta's _fbc cookie)"
        )
    return value


def _printable(value: str) -> str:
    if not value.isprintable():
        raise PydanticCustomError("string_unprintable", "must contain printable characters only")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("string_blank", "must not be blank")
    return value


def _printable_not_blank(value: str) -> str:
    """Both checks in one call: every event carries a user agent."""
    return _not_blank(_printable(value))


def event_time_problem(value: int) -> str | None:
    """Why Meta would refuse this event time now, if it would."""
    return events.event_time_problem(value, int(time.time()))


def _acceptable_event_time(value: int) -> int:
    problem = event_time_problem(value)
    if problem:
        raise PydanticCustomError(
            "event_time_out_of_range",
            "{problem} (Meta accepts the last 7 days, up to 60 s ahead)",
            {"problem": problem},
        )
    return value


OrgId = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=ORG_ID_PATTERN)]
CallId = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=ORG_ID_PATTERN)]

# An interaction's fields with a rule in Python, in field order, so errors come in that order.
# They run from one model validator (`_InteractionIn._meets_metas_rules`) rather than one
# AfterValidator per field: each call from pydantic's core into Python cost about 0.5 us, and
# seven of them were half of a batch event's validation.
_FIELD_RULES: tuple[tuple[str, Callable[[Any], Any]], ...] = (
    ("visitor_id", _not_blank),
    ("page_url", _absolute_http_url),
    ("client_ip_address", _ip_address),
    ("client_user_agent", _printable_not_blank),
    ("fbp", _fbp),
    ("fbc", _fbc),
    ("event_time", _acceptable_event_time),
    ("event_id", _printable),
)


def rules_without_regex_hold(fields: dict[str, Any]) -> bool:
    """The common case of the rules that need no regex, on a model's field values."""
    event_time, event_id = fields["event_time"], fields["event_id"]
    user_agent = fields["client_user_agent"]
    return (
        user_agent.isprintable()
        and not user_agent.isspace()
        and not fields["visitor_id"].isspace()
        and (event_time is None or not event_time_problem(event_time))
        and (event_id is None or event_id.isprintable())
    )


class _InteractionIn(BaseModel):
    model_config = STRICT
    kind: ClassVar[InteractionKind]

    organization_id: OrgId
    visitor_id: str = Field(
        min_length=1,
        max_length=MAX_VISITOR_ID_LENGTH,
        description="The platform's visitor id; only its SHA-256 leaves.",
    )
    page_url: str = Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="Absolute http(s) URL of the page showing the widget.",
    )
    client_ip_address: str = Field(
        max_length=100, description="The visitor's IPv4 or IPv6 address."
    )
    client_user_agent: str = Field(min_length=1, max_length=MAX_USER_AGENT_LENGTH)
    fbp: str | None = Field(default=None, max_length=MAX_COOKIE_LENGTH)
    fbc: str | None = Field(default=None, max_length=MAX_COOKIE_LENGTH)
    event_time: int | None = Field(
        default=None, description="Unix seconds; defaults to now. At most 7 days old."
    )
    event_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_EVENT_ID_LENGTH,
        description="Deduplication id; derived from the visitor and time if absent.",
    )

    @model_validator(mode="after")
    def _meets_metas_rules(self) -> Self:
        """Every rule's common case in one expression; anything else through each rule."""
        fields = self.__dict__
        fbp, fbc = fields["fbp"], fields["fbc"]
        if (
            _PLAIN_HTTP_URL.fullmatch(fields["page_url"])
            and _CANONICAL_IPV4.fullmatch(fields["client_ip_address"])
            and (fbp is None or _FBP.fullmatch(fbp))
            and (fbc is None or _FBC.fullmatch(fbc))
            and rules_without_regex_hold(fields)
        ):
            return self
        return self._apply_each_rule()

    def _apply_each_rule(self) -> Self:
        """The rules one by one: every field's error, and values made canonical (IP addresses)."""
        fields = self.__dict__
        errors: list[InitErrorDetails] = []
        for name, rule in _FIELD_RULES:
            value = fields[name]
            if value is None:
                continue
            try:
                checked = rule(value)
            except PydanticCustomError as error:
                errors.append(InitErrorDetails(type=error, loc=(name,), input=value))
                continue
            if checked != value:
                # The model is frozen to its callers; this is still its validation.
                object.__setattr__(self, name, checked)
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        return self

    def to_interaction(self, now: int) -> Interaction:
        # Positional: a thousand per batch, and keywords cost a NamedTuple twice as much.
        return Interaction(
            self.kind,
            self.organization_id,
            self.visitor_id,
            self.page_url,
            self.client_ip_address,
            self.client_user_agent,
            now if self.event_time is None else self.event_time,
            self.fbp,
            self.fbc,
            self.event_id,
            self._call_id(),
        )

    def _call_id(self) -> str | None:
        # Not getattr(self, "call_id", None): a missing attribute on a pydantic model costs
        # about 2 us (its __getattr__ fallback), a tenth of a batch event's whole budget.
        return None


class WidgetViewIn(_InteractionIn):
    kind: ClassVar[InteractionKind] = InteractionKind.WIDGET_VIEW


class CallStartedIn(_InteractionIn):
    kind: ClassVar[InteractionKind] = InteractionKind.CALL_STARTED

    call_id: CallId

    def _call_id(self) -> str | None:
        return self.call_id


class BatchWidgetView(WidgetViewIn):
    type: Literal["widget_view"]


class BatchCallStarted(CallStartedIn):
    type: Literal["call_started"]


BatchItem = Annotated[BatchWidgetView | BatchCallStarted, Field(discriminator="type")]


class BatchIn(BaseModel):
    model_config = STRICT

    events: list[BatchItem] = Field(min_length=1, max_length=MAX_BATCH_EVENTS)


class AcceptedOut(BaseModel):
    accepted: int = Field(description="Interactions recorded.")
    events_queued: int = Field(description="Conversions API events queued for delivery.")


class OrganizationIn(BaseModel):
    model_config = STRICT

    # Printable only: PostgreSQL text cannot hold NUL, and names end up in an HTML page.
    name: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=300),
        AfterValidator(_printable),
    ]
    status: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=50),
        AfterValidator(_printable),
    ]


class OrganizationOut(BaseModel):
    id: str
    name: str
    status: str
    retargeting_enabled: bool
    pageview_count: int
    call_count: int

    @classmethod
    def of(cls, org: orgs.Organization) -> OrganizationOut:
        return cls(
            id=org.id,
            name=org.name,
            status=org.status,
            retargeting_enabled=org.retargeting_enabled,
            pageview_count=org.pageview_count,
            call_count=org.call_count,
        )
