"""Interruptible sleeps for the background loops, so shutdown never waits out a poll interval."""

from __future__ import annotations

import asyncio
import contextlib


async def sleep_unless(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to `seconds`; return True at once if `stop` is (or becomes) set."""
    if seconds <= 0:
        return stop.is_set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()
