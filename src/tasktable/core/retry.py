"""Retry back-off: exponential with jitter, capped. Pure."""

from __future__ import annotations

import random
from datetime import timedelta

BASE_SECONDS = 2.0
CAP_SECONDS = 3600.0


def backoff(
    attempt: int,
    *,
    base: float = BASE_SECONDS,
    cap: float = CAP_SECONDS,
    rng: random.Random | None = None,
) -> timedelta:
    """Delay before run ``attempt + 1`` after run ``attempt`` failed.

    ``base * 2**(attempt-1)``, capped, with "full jitter" between half and all of it,
    so that many tasks failing together do not come back together.
    """
    exponent = min(max(0, attempt - 1), 64)  # 2.0 * 2**1024 would overflow a float
    raw = min(cap, base * (2**exponent))
    rand = rng or random
    return timedelta(seconds=raw / 2 + rand.random() * raw / 2)
