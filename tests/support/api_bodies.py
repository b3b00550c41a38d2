"""JSON bodies of the ingest API with valid defaults and explicit overrides (`None` drops a key)."""

from __future__ import annotations

import time
from typing import Any

FBP = "fb.1.1596403881668.1116446470"
FBC = "fb.1.1554763741205.IwAR2F4-dbP0l7Mn1IawQQGCINEz7PYXQvwjNwB_qa2ofrHyiLjcbCRxTDMgk"


def _with(defaults: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    body = {**defaults, **overrides}
    return {key: value for key, value in body.items() if value is not None}


def widget_view(**overrides: Any) -> dict[str, Any]:
    return _with(
        {
            "organization_id": "org-1",
            "visitor_id": "visitor-42",
            "page_url": "https://customer.example/pricing?plan=pro",
            "client_ip_address": "203.0.113.7",
            "client_user_agent": "Mozilla/5.0 (X11; Linux x86_64) Test",
            "event_time": int(time.time()),
        },
        overrides,
    )


def call_started(**overrides: Any) -> dict[str, Any]:
    return _with({**widget_view(), "call_id": "call-1"}, overrides)


def batch_item(kind: str = "widget_view", **overrides: Any) -> dict[str, Any]:
    body = widget_view(**overrides) if kind == "widget_view" else call_started(**overrides)
    return {"type": kind, **body}


def organization(**overrides: Any) -> dict[str, Any]:
    return _with({"name": "Acme Dental", "status": "active"}, overrides)
