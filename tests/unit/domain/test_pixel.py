from __future__ import annotations

import itertools

import pytest

from retargeting.domain.pixel import (
    OrgToggleRefused,
    PixelSettings,
    PixelState,
    check_org_toggle,
    mask_token,
    token_last4,
)

TOKEN = "EAAsecrettoken1234"


@pytest.mark.parametrize(
    ("pixel_id", "token", "enabled", "state"),
    [
        ("", "", False, PixelState.NOT_CONFIGURED),
        ("", "", True, PixelState.NOT_CONFIGURED),
        ("123", "", True, PixelState.NOT_CONFIGURED),
        ("", TOKEN, True, PixelState.NOT_CONFIGURED),
        ("123", TOKEN, False, PixelState.DISABLED),
        ("123", TOKEN, True, PixelState.ACTIVE),
    ],
)
def test_state_machine(pixel_id: str, token: str, enabled: bool, state: PixelState) -> None:
    pixel = PixelSettings(pixel_id=pixel_id, access_token=token, enabled=enabled)
    assert pixel.state is state


@pytest.mark.parametrize(("state", "turn_on"), list(itertools.product(PixelState, [True, False])))
def test_org_toggle_needs_active_pixel_only_to_turn_on(state: PixelState, turn_on: bool) -> None:
    if turn_on and state is not PixelState.ACTIVE:
        with pytest.raises(OrgToggleRefused, match="Cannot enable retargeting"):
            check_org_toggle(state, turn_on)
    else:
        check_org_toggle(state, turn_on)


def test_refusal_says_what_to_do() -> None:
    with pytest.raises(OrgToggleRefused, match="not configured"):
        check_org_toggle(PixelState.NOT_CONFIGURED, True)
    with pytest.raises(OrgToggleRefused, match="enable it first"):
        check_org_toggle(PixelState.DISABLED, True)


def test_repr_never_shows_the_token() -> None:
    pixel = PixelSettings(pixel_id="1", access_token=TOKEN, enabled=True)
    assert TOKEN not in repr(pixel)
    assert TOKEN not in str(pixel)
    assert "1234" in repr(pixel)


def test_masking_shows_at_most_last_four() -> None:
    assert mask_token("") == ""
    assert mask_token("short") == "…"
    assert mask_token(TOKEN) == "…1234"
    assert token_last4(TOKEN) == "1234"
    assert token_last4("short") is None
