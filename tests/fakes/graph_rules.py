"""Meta's documented Conversions API request rules, as pure functions for the Graph stand-in.

Kept apart from the server so the rules read as a checklist against Meta's documentation, and so
they can be tested or reused without a socket. Each check answers with the error object Meta
would send, or None. Subcodes 33, 2804003 and 2804050 are Meta's; 2804019 is the generic
"invalid parameter" subcode the stand-in uses for every other per-event problem.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

MAX_EVENTS_PER_REQUEST = 1000
MAX_EVENT_AGE_SECONDS = 7 * 24 * 3600
MAX_FUTURE_SECONDS = 60

SUBCODE_UNKNOWN_OBJECT = 33
SUBCODE_TOO_OLD = 2804003
SUBCODE_INVALID_EVENT = 2804019
SUBCODE_NO_CUSTOMER_INFO = 2804050

ACTION_SOURCES = frozenset(
    {
        "website",
        "app",
        "email",
        "phone_call",
        "chat",
        "physical_store",
        "system_generated",
        "business_messaging",
        "other",
    }
)
# Any one of these identifies a customer; IP address and user agent count only together.
CUSTOMER_KEYS = frozenset(
    {
        "em",
        "ph",
        "fn",
        "ln",
        "db",
        "ge",
        "ct",
        "st",
        "zp",
        "country",
        "external_id",
        "fbp",
        "fbc",
        "subscription_id",
        "fb_login_id",
        "lead_id",
        "anon_id",
        "madid",
        "page_scoped_user_id",
        "ctwa_clid",
        "ig_sid",
    }
)
_HASH = re.compile(r"[0-9a-f]{64}")
_FB_COOKIE = re.compile(r"fb\.[0-9]+\.[0-9]+\..+")


@dataclasses.dataclass(frozen=True, slots=True)
class MetaError:
    """One of Meta's error answers: the HTTP status and the `error` object it carries."""

    code: int
    message: str
    type: str = "OAuthException"
    error_subcode: int | None = None
    error_user_msg: str | None = None
    is_transient: bool = False
    status: int = 400

    def to_json(self, fbtrace_id: str) -> bytes:
        error: dict[str, Any] = {
            "message": self.message,
            "type": self.type,
            "code": self.code,
            "is_transient": self.is_transient,
            "fbtrace_id": fbtrace_id,
        }
        if self.error_subcode is not None:
            error["error_subcode"] = self.error_subcode
        if self.error_user_msg is not None:
            error["error_user_title"] = self.message
            error["error_user_msg"] = self.error_user_msg
        return orjson.dumps({"error": error})


def invalid(user_msg: str, subcode: int | None = SUBCODE_INVALID_EVENT) -> MetaError:
    return MetaError(100, "Invalid parameter", error_subcode=subcode, error_user_msg=user_msg)


def bad_token(present: bool) -> MetaError:
    if present:
        return MetaError(190, "Invalid OAuth access token - Cannot parse access token")
    return MetaError(190, "An access token is required to request this resource.")


def unknown_pixel(pixel_id: str) -> MetaError:
    return MetaError(
        100,
        f"Unsupported post request. Object with ID '{pixel_id}' does not exist, cannot be loaded "
        "due to missing permissions, or does not support this operation.",
        type="GraphMethodException",
        error_subcode=SUBCODE_UNKNOWN_OBJECT,
    )


def unknown_path(path: str) -> MetaError:
    return MetaError(2500, f"Unknown path components: {path}")


def parse_body(content_type: str, raw: bytes) -> dict[str, Any] | MetaError:
    """The request parameters, from a JSON body or a form-encoded one (Meta accepts both)."""
    if content_type.startswith("application/x-www-form-urlencoded"):
        fields = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        params: dict[str, Any] = {key: values[-1] for key, values in fields.items()}
        if isinstance(params.get("data"), str):
            try:
                params["data"] = orjson.loads(params["data"])
            except orjson.JSONDecodeError:
                return MetaError(100, "(#100) param data must be an array.")
        return params
    if not content_type.startswith("application/json"):
        return MetaError(100, "(#100) Content-Type must be application/json or form-encoded")
    try:
        params = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return MetaError(100, "(#100) The request body is not valid JSON")
    if not isinstance(params, dict):
        return MetaError(100, "(#100) The request body must be a JSON object")
    return params


def decoded_events(data: list[Any]) -> list[Any]:
    """Events as objects. Meta also takes each event as a JSON-encoded string, which is how the
    official SDK sends them; a string that is not a JSON object stays as it is (and is refused)."""
    events: list[Any] = []
    for event in data:
        if isinstance(event, str):
            with contextlib.suppress(orjson.JSONDecodeError):
                event = orjson.loads(event)
        events.append(event)
    return events


def data_problem(data: object) -> MetaError | None:
    if not isinstance(data, list) or not data:
        return MetaError(100, "(#100) The parameter data is required and must be a non-empty array")
    if len(data) > MAX_EVENTS_PER_REQUEST:
        return MetaError(
            100, f"(#100) param data must be an array with at most {MAX_EVENTS_PER_REQUEST} items"
        )
    return None


def event_problem(index: int, event: object, now: float) -> MetaError | None:
    """Meta's per-event checks; the first failure is reported with the event's index."""
    if not isinstance(event, dict):
        return invalid(f"data[{index}] must be an object")
    name = event.get("event_name")
    if not isinstance(name, str) or not name:
        return invalid(f"data[{index}]: event_name is required")
    problem = _time_problem(index, event.get("event_time"), now)
    if problem is not None:
        return problem
    source = event.get("action_source")
    if source not in ACTION_SOURCES:
        return invalid(f"data[{index}]: action_source {source!r} is not one of Meta's values")
    user_data = event.get("user_data")
    if not isinstance(user_data, dict):
        return invalid(f"data[{index}]: user_data is required and must be an object")
    problem = _user_data_problem(index, user_data)
    if problem is not None:
        return problem
    if source == "website":
        if not _is_absolute_url(event.get("event_source_url")):
            return invalid(f"data[{index}]: website events need an absolute event_source_url")
        agent = user_data.get("client_user_agent")
        if not isinstance(agent, str) or not agent:
            return invalid(f"data[{index}]: website events need user_data.client_user_agent")
    if "event_id" in event and not isinstance(event["event_id"], str):
        return invalid(f"data[{index}]: event_id must be a string")
    if "custom_data" in event and not isinstance(event["custom_data"], dict):
        return invalid(f"data[{index}]: custom_data must be an object")
    return None


def _time_problem(index: int, event_time: object, now: float) -> MetaError | None:
    if not isinstance(event_time, int) or isinstance(event_time, bool):
        return invalid(f"data[{index}]: event_time must be a Unix timestamp in seconds")
    if event_time < now - MAX_EVENT_AGE_SECONDS:
        return invalid(
            f"data[{index}]: event_time {event_time} is too far in the past: events must be "
            "sent within 7 days of when they occurred",
            SUBCODE_TOO_OLD,
        )
    if event_time > now + MAX_FUTURE_SECONDS:
        return invalid(f"data[{index}]: event_time {event_time} is too far in the future")
    return None


def _user_data_problem(index: int, user_data: Mapping[str, Any]) -> MetaError | None:
    present = {key for key, value in user_data.items() if value not in (None, "", [])}
    both_client_hints = {"client_ip_address", "client_user_agent"} <= present
    if not (present & CUSTOMER_KEYS or both_client_hints):
        return invalid(
            f"data[{index}]: the user_data parameters must include at least one customer "
            "information parameter",
            SUBCODE_NO_CUSTOMER_INFO,
        )
    if "external_id" in user_data and not _is_hashes(user_data["external_id"]):
        return invalid(f"data[{index}]: external_id must be SHA-256 lowercase hex")
    if "client_ip_address" in user_data and not _is_ip(user_data["client_ip_address"]):
        return invalid(f"data[{index}]: client_ip_address is not an IP address")
    for cookie in ("fbp", "fbc"):
        value = user_data.get(cookie)
        if value is not None and not (isinstance(value, str) and _FB_COOKIE.fullmatch(value)):
            return invalid(f"data[{index}]: {cookie} must look like fb.1.<timestamp>.<value>")
    return None


def _is_hashes(value: object) -> bool:
    values = value if isinstance(value, list) else [value]
    return bool(values) and all(isinstance(v, str) and _HASH.fullmatch(v) for v in values)


def _is_ip(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _is_absolute_url(value: object) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)
