"""How the sender reacts to each answer from Meta: a pure policy, tested without a network.

Codes follow Meta's Conversions API and Graph API error documentation (see DESIGN.md).
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

BACKOFF_BASE_SECONDS = 2.0
BACKOFF_CAP_SECONDS = 3600.0  # an hour between attempts at most; events expire after 7 days
TRANSIENT_CODES = frozenset({1, 2})
RATE_LIMIT_CODES = frozenset({4, 17, 32, 341, 368, 613, *range(80000, 80015)})
TOKEN_CODES = frozenset({102, 190})
PERMISSION_CODES = frozenset({10, *range(200, 300)})
INVALID_PARAMETER = 100
UNKNOWN_OBJECT_SUBCODE = 33  # code 100/33: the pixel id does not exist or the token cannot see it


class Disposition(enum.StrEnum):
    """What to do with a batch after Meta's answer."""

    DELIVERED = "delivered"
    RETRY = "retry"  # transient: same batch, later
    RATE_LIMITED = "rate_limited"  # retry later and send less at once
    PAUSE = "pause"  # credentials or permissions: stop sending, keep events, tell the admin
    INVALID = "invalid"  # a bad event in the batch: split it until the bad one stands alone


@dataclass(frozen=True, slots=True)
class GraphError:
    """Meta's error object, or a transport failure described in the same terms."""

    message: str
    code: int | None = None
    error_subcode: int | None = None
    type: str | None = None
    is_transient: bool = False
    error_user_msg: str | None = None
    fbtrace_id: str | None = None
    http_status: int | None = None

    @property
    def summary(self) -> str:
        """A line for the admin: Meta's own words first, with its codes for the search box."""
        text = self.error_user_msg or self.message
        codes = f"code {self.code}" if self.code is not None else "no code"
        if self.error_subcode is not None:
            codes += f", subcode {self.error_subcode}"
        return f"{text} ({codes})"


def classify(error: GraphError) -> Disposition:
    code = error.code
    if code in TOKEN_CODES or code in PERMISSION_CODES:
        return Disposition.PAUSE
    if code == INVALID_PARAMETER and error.error_subcode == UNKNOWN_OBJECT_SUBCODE:
        return Disposition.PAUSE
    if code in RATE_LIMIT_CODES:
        return Disposition.RATE_LIMITED
    if error.is_transient or code in TRANSIENT_CODES:
        return Disposition.RETRY
    status = error.http_status
    if status is None or status >= 500 or status == 429:
        return Disposition.RETRY  # transport failure, timeout or server error
    if code is None and status < 300:
        return Disposition.RETRY  # a 2xx we could not read: the answer, not the events, is broken
    if code == INVALID_PARAMETER:
        return Disposition.INVALID
    # An unknown 4xx: retrying the same bytes would fail the same way, so isolate the culprit.
    return Disposition.INVALID


def backoff_seconds(attempts: int, rng: random.Random) -> float:
    """Exponential backoff with full jitter: attempt 1 waits up to 2 s, then 4, 8, ... an hour."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2.0 ** max(attempts - 1, 0))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def next_attempt_at(attempts: int, now: float, rng: random.Random) -> float:
    return now + backoff_seconds(attempts, rng)


@dataclass(frozen=True, slots=True)
class Concurrency:
    """Requests in flight, shrunk on rate limits and grown back slowly (AIMD)."""

    limit: int
    maximum: int
    clean_streak: int = 0

    GROW_AFTER = 20  # clean answers before one more request may be in flight

    def after_rate_limit(self) -> Concurrency:
        return Concurrency(limit=max(1, self.limit // 2), maximum=self.maximum)

    def after_clean_answer(self) -> Concurrency:
        streak = self.clean_streak + 1
        if streak >= self.GROW_AFTER and self.limit < self.maximum:
            return Concurrency(limit=self.limit + 1, maximum=self.maximum)
        return Concurrency(limit=self.limit, maximum=self.maximum, clean_streak=streak)
