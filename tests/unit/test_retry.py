"""Retry back-off: exponential, capped, jittered between half and all of it."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from tasktable.core.retry import BASE_SECONDS, CAP_SECONDS, backoff


class Fixed(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.mark.parametrize(("attempt", "raw"), [(1, 2), (2, 4), (3, 8), (5, 32), (11, 2048)])
def test_bounds_double_each_attempt(attempt: int, raw: float) -> None:
    assert backoff(attempt, rng=Fixed(0.0)) == timedelta(seconds=raw / 2)
    assert backoff(attempt, rng=Fixed(0.999999)).total_seconds() == pytest.approx(raw, rel=1e-5)


def test_attempt_zero_or_less_uses_the_base() -> None:
    assert backoff(0, rng=Fixed(0.0)) == timedelta(seconds=BASE_SECONDS / 2)
    assert backoff(-3, rng=Fixed(0.0)) == timedelta(seconds=BASE_SECONDS / 2)


@pytest.mark.parametrize("attempt", [13, 50, 1000, 5000, 10**6])
def test_capped(attempt: int) -> None:
    high = backoff(attempt, rng=Fixed(0.999999)).total_seconds()
    low = backoff(attempt, rng=Fixed(0.0)).total_seconds()
    assert low == CAP_SECONDS / 2
    assert CAP_SECONDS / 2 < high <= CAP_SECONDS


def test_custom_base_and_cap() -> None:
    assert backoff(4, base=1, cap=5, rng=Fixed(0.0)) == timedelta(seconds=2.5)
    assert backoff(2, base=1, cap=5, rng=Fixed(0.0)) == timedelta(seconds=1)


def test_jitter_spreads_and_stays_in_bounds() -> None:
    rng = random.Random(1234)
    delays = [backoff(4, rng=rng).total_seconds() for _ in range(500)]
    assert all(8.0 <= d <= 16.0 for d in delays)
    assert len({round(d, 3) for d in delays}) > 100
    assert min(delays) < 9 and max(delays) > 15
