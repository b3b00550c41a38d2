"""The pixel configuration, the delivery pause and the settings revision, as stored rows.

The pixel lives under the spec's key `greetnow_facebook_pixel`; its access token is encrypted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, select, update

from retargeting.db import dialect
from retargeting.db.tables import platform_settings, settings_revision
from retargeting.domain.pixel import NO_PIXEL, PixelSettings
from retargeting.security import TokenCipher

PIXEL_KEY = "greetnow_facebook_pixel"
PAUSE_KEY = "greetnow_delivery_pause"


@dataclass(frozen=True, slots=True)
class DeliveryPause:
    """Why delivery stopped: Meta refused the credentials or permissions; events are kept."""

    reason: str
    code: int | None
    error_subcode: int | None
    fbtrace_id: str | None
    since: float


def read_revision(conn: Connection) -> int:
    return int(conn.execute(select(settings_revision.c.revision)).scalar_one())


def bump_revision(conn: Connection) -> None:
    """Part of every settings change, so every process notices within one poll."""
    conn.execute(update(settings_revision).values(revision=settings_revision.c.revision + 1))


def read_value(conn: Connection, key: str) -> dict[str, Any] | None:
    """The JSON value stored under `key`, if any."""
    value = conn.execute(
        select(platform_settings.c.value).where(platform_settings.c.key == key)
    ).scalar_one_or_none()
    return None if value is None else dict(orjson.loads(value))


def write_value(conn: Connection, key: str, value: dict[str, Any] | None, now: float) -> None:
    """Store a JSON value under `key` (None deletes it); the caller bumps the revision if needed."""
    if value is None:
        conn.execute(platform_settings.delete().where(platform_settings.c.key == key))
        return
    encoded = orjson.dumps(value).decode()
    dialect.insert_or_update(
        conn,
        platform_settings,
        {"key": key, "value": encoded, "updated_at": now},
        key="key",
        update={"value": encoded, "updated_at": now},
    )


def read_pixel(conn: Connection, cipher: TokenCipher) -> PixelSettings:
    stored = read_value(conn, PIXEL_KEY)
    if stored is None:
        return NO_PIXEL
    encrypted = stored.get("access_token_encrypted") or ""
    return PixelSettings(
        pixel_id=str(stored.get("pixel_id") or ""),
        access_token=cipher.decrypt(encrypted) if encrypted else "",
        test_event_code=str(stored.get("test_event_code") or ""),
        enabled=bool(stored.get("enabled")),
    )


def write_pixel(conn: Connection, cipher: TokenCipher, pixel: PixelSettings, now: float) -> None:
    value = {
        "pixel_id": pixel.pixel_id,
        "access_token_encrypted": cipher.encrypt(pixel.access_token) if pixel.access_token else "",
        "test_event_code": pixel.test_event_code,
        "enabled": pixel.enabled,
    }
    write_value(conn, PIXEL_KEY, value, now)
    bump_revision(conn)


def read_pause(conn: Connection) -> DeliveryPause | None:
    stored = read_value(conn, PAUSE_KEY)
    if stored is None:
        return None
    return DeliveryPause(
        reason=str(stored["reason"]),
        code=stored.get("code"),
        error_subcode=stored.get("error_subcode"),
        fbtrace_id=stored.get("fbtrace_id"),
        since=float(stored["since"]),
    )


def write_pause(conn: Connection, pause: DeliveryPause | None, now: float) -> None:
    value = None
    if pause is not None:
        value = {
            "reason": pause.reason,
            "code": pause.code,
            "error_subcode": pause.error_subcode,
            "fbtrace_id": pause.fbtrace_id,
            "since": pause.since,
        }
    write_value(conn, PAUSE_KEY, value, now)
    bump_revision(conn)
