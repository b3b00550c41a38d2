"""Scripted misbehaviour for the Graph stand-in: the ways Meta's API fails in production.

Each `Fault` replaces the answer to one request (or, for a stalled request with `deliver`, delays
it), so tests can drive every branch of the delivery policy: 5xx pages, Meta's transient error,
rate limits, token errors and answers that arrive after the client gave up.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from typing import Literal

from tests.fakes.graph_rules import MetaError

RATE_LIMIT_MESSAGES = {
    4: "(#4) Application request limit reached",
    17: "(#17) User request limit reached",
    613: "(#613) Calls to this api have exceeded the rate limit.",
}

FaultKind = Literal["server_error", "timeout", "slow", "rate_limit", "error"]


@dataclasses.dataclass(frozen=True, slots=True)
class Fault:
    """What the stand-in does to one request instead of (or before) answering it normally."""

    kind: FaultKind
    answer: MetaError | None = None  # None means a non-JSON 5xx page
    status: int = 500
    seconds: float = 0.0  # for timeouts and slow answers: how long to stall before answering
    deliver: bool = False  # process the request normally after the stall (slow answers)

    @classmethod
    def server_error(cls, status: int = 500, *, json_body: bool = False) -> Fault:
        """A 5xx: an HTML page by default, or Meta's transient error object (code 2)."""
        error = None
        if json_body:
            error = MetaError(
                2,
                "An unexpected error has occurred. Please retry your request later.",
                is_transient=True,
                status=status,
            )
        return cls("server_error", answer=error, status=status)

    @classmethod
    def timeout(cls, seconds: float = 3.0, *, deliver: bool = False) -> Fault:
        """Stall past the client's timeout. With `deliver`, Meta got the events anyway."""
        return cls("timeout", status=504, seconds=seconds, deliver=deliver)

    @classmethod
    def slow(cls, seconds: float = 0.5) -> Fault:
        """A slow but successful answer: Meta on a bad day, still inside the client's timeout."""
        return cls("slow", seconds=seconds, deliver=True)

    @classmethod
    def rate_limit(cls, code: int = 17) -> Fault:
        message = RATE_LIMIT_MESSAGES.get(code, f"(#{code}) There have been too many calls")
        return cls("rate_limit", answer=MetaError(code, message), status=400)

    @classmethod
    def error(
        cls,
        code: int,
        subcode: int | None = None,
        message: str = "Scripted error",
        *,
        is_transient: bool = False,
        status: int = 400,
        type: str = "OAuthException",
        user_msg: str | None = None,
    ) -> Fault:
        error = MetaError(code, message, type, subcode, user_msg, is_transient, status)
        return cls("error", answer=error, status=status)


def random_faults(
    rate: float, *, seed: int = 0, timeout_seconds: float = 3.0
) -> Callable[[], Fault | None]:
    """A seeded chooser for `set_fault_mode`: fails `rate` of requests with a mix of faults."""
    rng = random.Random(seed)
    kinds = (Fault.server_error(), Fault.timeout(timeout_seconds), Fault.rate_limit())
    return lambda: rng.choice(kinds) if rng.random() < rate else None


def chaos_faults(
    rate: float, *, seed: int = 0, timeout_seconds: float = 3.0, slow_seconds: float = 0.5
) -> Callable[[], Fault | None]:
    """Every transient way Meta fails, mixed: HTML 500/502 pages, Meta's JSON 503 (code 2),
    stalls past the client's timeout, the three rate-limit codes, and slow successes.

    None of them delivers and then fails, so a duplicate seen by the stand-in can only come from
    the sender re-sending (the soak tests count those against the kills that cause them).
    """
    rng = random.Random(seed)
    kinds = (
        Fault.server_error(),
        Fault.server_error(502),
        Fault.server_error(503, json_body=True),
        Fault.timeout(timeout_seconds),
        Fault.rate_limit(4),
        Fault.rate_limit(17),
        Fault.rate_limit(613),
        Fault.slow(slow_seconds),
    )
    return lambda: rng.choice(kinds) if rng.random() < rate else None
