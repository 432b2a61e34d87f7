"""Workload sizes (full and ``BENCH_QUICK=1``) and run settings from the environment."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Sizes:
    enqueue: int = 5_000
    enqueue_many: int = 100_000
    batch: int = 1_000
    drain: int = 20_000
    latency: int = 200
    latency_interval: float = 0.010
    overhead: int = 200
    overhead_sleep: float = 0.050
    ceiling_seconds: float = 3.0
    ceiling_rows: int = 1_000_000
    ceiling_batches: tuple[int, ...] = (1, 5, 50)
    roundtrips: int = 5_000
    memory: int = 5_000
    scale_history: int = 1_000_000
    scale_pending: int = 5_000
    scale_claims: int = 200
    slots: int = 5
    workers: int = 4
    timeout: float = 900.0


FULL = Sizes()
QUICK = Sizes(
    enqueue=500,
    enqueue_many=5_000,
    drain=1_000,
    latency=50,
    overhead=40,
    ceiling_seconds=1.0,
    ceiling_rows=200_000,
    roundtrips=500,
    memory=500,
    scale_history=100_000,
    scale_pending=1_000,
    scale_claims=50,
    timeout=300.0,
)
#: For the harness's own test: seconds, not minutes.
TINY = dataclasses.replace(
    QUICK, enqueue=50, enqueue_many=200, batch=100, drain=50, latency=10, overhead=10
)

SIZES = {"full": FULL, "quick": QUICK, "tiny": TINY}


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def env_list(name: str) -> list[str] | None:
    raw = os.environ.get(name, "").strip()
    return [part.strip() for part in raw.split(",") if part.strip()] or None
