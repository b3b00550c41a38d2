"""Test data with sensible defaults and explicit overrides."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from sqlalchemy import Engine

from retargeting.db import orgs, settings_store
from retargeting.domain.events import Interaction, InteractionKind
from retargeting.domain.pixel import PixelSettings
from retargeting.security import TokenCipher
from retargeting.services import credentials

PIXEL_ID = "1234567890"
ACCESS_TOKEN = "EAAtestaccesstoken0123456789abcdefWXYZ"
TEST_KEY = "q9Dq1V3b3vjMZpO9y1m8m6oZ0Yx2WQ8w6y0c2H8aG5E="


def make_cipher() -> TokenCipher:
    return TokenCipher(TEST_KEY)


def make_org(
    engine: Engine,
    org_id: str = "org-1",
    *,
    name: str | None = None,
    status: str = "active",
    retargeting_enabled: bool = False,
) -> str:
    now = time.time()
    with engine.begin() as conn:
        orgs.upsert(conn, org_id, name or f"Organization {org_id}", status, now)
        if retargeting_enabled:
            orgs.set_retargeting(conn, org_id, True, now)
    return org_id


def make_pixel(
    engine: Engine, cipher: TokenCipher | None = None, **overrides: Any
) -> PixelSettings:
    pixel = replace(
        PixelSettings(pixel_id=PIXEL_ID, access_token=ACCESS_TOKEN, enabled=True), **overrides
    )
    with engine.begin() as conn:
        settings_store.write_pixel(conn, cipher or make_cipher(), pixel, time.time())
    return pixel


def make_interaction(**overrides: Any) -> Interaction:
    defaults: dict[str, Any] = {
        "kind": InteractionKind.WIDGET_VIEW,
        "organization_id": "org-1",
        "visitor_id": "visitor-42",
        "page_url": "https://customer.example/pricing",
        "client_ip_address": "203.0.113.7",
        "client_user_agent": "Mozilla/5.0 (X11; Linux x86_64) Test",
        "event_time": int(time.time()),
    }
    defaults.update(overrides)
    if defaults["kind"] is InteractionKind.CALL_STARTED:
        defaults.setdefault("call_id", "call-1")
    return Interaction(**defaults)


def make_superadmin_and_key(engine: Engine, email: str = "sa@example.com") -> tuple[str, str]:
    """A superadmin's personal access token and a platform ingest key, as (token, key) secrets."""
    now = time.time()
    credentials.create_user(
        engine, email=email, password="a long password!", is_superadmin=True, now=now
    )
    token = credentials.create_token(engine, email=email, name="tests", expires_days=None, now=now)
    key = credentials.create_api_key(engine, name="platform", now=now)
    return token.secret, key.secret
