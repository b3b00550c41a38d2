from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from retargeting.domain.delivery import (
    BACKOFF_CAP_SECONDS,
    Concurrency,
    Disposition,
    GraphError,
    backoff_seconds,
    classify,
)


@pytest.mark.parametrize(
    ("error", "disposition"),
    [
        (GraphError("unknown", code=1, http_status=500), Disposition.RETRY),
        (GraphError("service", code=2, http_status=503), Disposition.RETRY),
        (GraphError("transient", code=999, is_transient=True, http_status=400), Disposition.RETRY),
        (GraphError("bad gateway", http_status=502), Disposition.RETRY),
        (GraphError("timed out"), Disposition.RETRY),
        (GraphError("too many", http_status=429), Disposition.RETRY),
        (GraphError("unreadable 200", http_status=200), Disposition.RETRY),
        (GraphError("app limit", code=4, http_status=400), Disposition.RATE_LIMITED),
        (GraphError("user limit", code=17, http_status=400), Disposition.RATE_LIMITED),
        (GraphError("app limit", code=341, http_status=400), Disposition.RATE_LIMITED),
        (GraphError("spam", code=368, http_status=400), Disposition.RATE_LIMITED),
        (GraphError("api limit", code=613, http_status=400), Disposition.RATE_LIMITED),
        (GraphError("ads limit", code=80000, http_status=400), Disposition.RATE_LIMITED),
        (GraphError("ads limit", code=80014, http_status=400), Disposition.RATE_LIMITED),
        (GraphError("token", code=190, http_status=400), Disposition.PAUSE),
        (GraphError("perm", code=10, http_status=400), Disposition.PAUSE),
        (GraphError("perm", code=200, http_status=403), Disposition.PAUSE),
        (GraphError("perm", code=299, http_status=403), Disposition.PAUSE),
        (GraphError("no pixel", code=100, error_subcode=33, http_status=400), Disposition.PAUSE),
        (
            GraphError("invalid", code=100, error_subcode=2804003, http_status=400),
            Disposition.INVALID,
        ),
        (GraphError("invalid", code=100, http_status=400), Disposition.INVALID),
    ],
)
def test_classification(error: GraphError, disposition: Disposition) -> None:
    assert classify(error) is disposition


def test_summary_prefers_the_user_message_and_names_codes() -> None:
    error = GraphError(
        "Invalid parameter", code=100, error_subcode=2804003, error_user_msg="Too old"
    )
    assert error.summary == "Too old (code 100, subcode 2804003)"


@given(attempts=st.integers(1, 100), seed=st.integers(0, 2**32))
def test_backoff_grows_and_is_capped(attempts: int, seed: int) -> None:
    delay = backoff_seconds(attempts, random.Random(seed))
    ceiling = min(BACKOFF_CAP_SECONDS, 2.0 * 2.0 ** (attempts - 1))
    assert ceiling / 2 <= delay <= ceiling


def test_concurrency_halves_and_grows_back_slowly() -> None:
    c = Concurrency(limit=8, maximum=8).after_rate_limit()
    assert c.limit == 4
    assert c.after_rate_limit().after_rate_limit().after_rate_limit().limit == 1
    for _ in range(Concurrency.GROW_AFTER - 1):
        c = c.after_clean_answer()
    assert c.limit == 4
    assert c.after_clean_answer().limit == 5
    top = Concurrency(limit=8, maximum=8)
    for _ in range(100):
        top = top.after_clean_answer()
    assert top.limit == 8
