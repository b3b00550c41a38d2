"""The pixel configuration state machine of the spec, and the org-toggle rule that depends on it."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

PIXEL_ID_PATTERN = re.compile(r"^[0-9]{1,20}$")


class PixelState(enum.StrEnum):
    NOT_CONFIGURED = "not_configured"
    DISABLED = "disabled"
    ACTIVE = "active"


@dataclass(frozen=True, slots=True)
class PixelSettings:
    """The pixel as stored; `access_token` is the decrypted secret and must never be rendered."""

    pixel_id: str = ""
    access_token: str = ""
    test_event_code: str = ""
    enabled: bool = False

    def __repr__(self) -> str:  # keeps the token out of tracebacks and debug logs
        token = mask_token(self.access_token)
        return (
            f"PixelSettings(pixel_id={self.pixel_id!r}, access_token={token!r}, "
            f"test_event_code={self.test_event_code!r}, enabled={self.enabled})"
        )

    @property
    def is_configured(self) -> bool:
        return bool(self.pixel_id and self.access_token)

    @property
    def state(self) -> PixelState:
        if not self.is_configured:
            return PixelState.NOT_CONFIGURED
        return PixelState.ACTIVE if self.enabled else PixelState.DISABLED


NO_PIXEL = PixelSettings()


class OrgToggleRefused(ValueError):
    """Switching an organization on while the pixel is not active (spec row 6)."""


def check_org_toggle(pixel_state: PixelState, turn_on: bool) -> None:
    """Turning retargeting on needs an active pixel; turning it off is always allowed."""
    if turn_on and pixel_state is not PixelState.ACTIVE:
        if pixel_state is PixelState.NOT_CONFIGURED:
            reason = "the pixel is not configured: set a Pixel ID and Access Token first"
        else:
            reason = "the pixel is disabled: enable it first"
        raise OrgToggleRefused(f"Cannot enable retargeting for an organization: {reason}.")


def mask_token(token: str) -> str:
    """What may be shown of a secret: whether one is set and its last 4 characters."""
    if not token:
        return ""
    return "…" + token[-4:] if len(token) > 8 else "…"


def token_last4(token: str) -> str | None:
    return token[-4:] if len(token) > 8 else None
