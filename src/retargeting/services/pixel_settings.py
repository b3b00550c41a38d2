"""Saving the pixel: validation, encryption, audit, resuming a paused delivery, revision bump."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from sqlalchemy import Engine

from retargeting.db import audit, settings_store
from retargeting.domain.pixel import PIXEL_ID_PATTERN, PixelSettings, token_last4
from retargeting.security import TokenCipher

TEST_EVENT_CODE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_ACCESS_TOKEN_LENGTH = 1000


class PixelUpdateRejected(ValueError):
    """A field of the update is invalid; `field` names it for the API and the page."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True, slots=True)
class PixelUpdate:
    pixel_id: str
    enabled: bool
    test_event_code: str = ""
    access_token: str | None = None  # None or "" keeps the stored token


def public_view(pixel: PixelSettings) -> dict[str, object]:
    """Everything about the pixel that may be shown or logged: never the token itself."""
    return {
        "pixel_id": pixel.pixel_id,
        "access_token_set": bool(pixel.access_token),
        "access_token_last4": token_last4(pixel.access_token),
        "test_event_code": pixel.test_event_code,
        "enabled": pixel.enabled,
        "state": pixel.state.value,
    }


def validate(update: PixelUpdate, stored: PixelSettings) -> PixelSettings:
    pixel_id = update.pixel_id.strip()
    if pixel_id and not PIXEL_ID_PATTERN.match(pixel_id):
        raise PixelUpdateRejected("pixel_id", "must be the pixel's numeric ID (digits only)")
    token = (update.access_token or "").strip()
    if len(token) > MAX_ACCESS_TOKEN_LENGTH:
        raise PixelUpdateRejected("access_token", "is too long to be a Meta access token")
    if token and (any(c.isspace() for c in token) or not token.isprintable()):
        raise PixelUpdateRejected("access_token", "must not contain spaces or control characters")
    code = update.test_event_code.strip()
    if code and not TEST_EVENT_CODE_PATTERN.match(code):
        raise PixelUpdateRejected(
            "test_event_code", "must be letters, digits, '-' or '_' (like TEST12345)"
        )
    new = replace(
        stored,
        pixel_id=pixel_id,
        access_token=token or stored.access_token,
        test_event_code=code,
        enabled=update.enabled,
    )
    if new.enabled and not new.pixel_id:
        raise PixelUpdateRejected("pixel_id", "is required to enable the pixel")
    if new.enabled and not new.access_token:
        raise PixelUpdateRejected("access_token", "is required to enable the pixel")
    return new


def update_pixel(
    engine: Engine, cipher: TokenCipher, *, actor: str, update: PixelUpdate, now: float
) -> PixelSettings:
    """Save the pixel; new credentials lift a delivery pause so held events go out."""
    with engine.begin() as conn:
        stored = settings_store.read_pixel(conn, cipher)
        new = validate(update, stored)
        if new == stored:
            return stored
        settings_store.write_pixel(conn, cipher, new, now)
        credentials_changed = (new.access_token, new.pixel_id) != (
            stored.access_token,
            stored.pixel_id,
        )
        if credentials_changed and settings_store.read_pause(conn) is not None:
            settings_store.write_pause(conn, None, now)
        audit.record(
            conn,
            actor=actor,
            action="pixel.update",
            target=settings_store.PIXEL_KEY,
            old_value=public_view(stored),
            new_value=public_view(new),
            now=now,
        )
    return new
