"""What every peer adapter provides to the generic workloads in :mod:`bench.peers.run`."""

from __future__ import annotations

import time
from typing import NamedTuple


class Record(NamedTuple):
    """One task's life in epoch seconds: enqueued, started, finished."""

    enqueued: float
    started: float
    finished: float


class Peer:
    """An adapter: set up, enqueue through the public API, run a worker, read results back.

    ``processes`` worker processes of ``worker_concurrency`` each make the
    benchmark's "one worker with 5 concurrency".
    """

    name = "peer"
    backends: tuple[str, ...] = ("postgresql",)
    processes = 1
    worker_concurrency = 5
    bulk = True

    def __init__(self, backend: str, url: str, state: str) -> None:
        self.backend = backend
        self.url = url
        self.state = state  # a folder for files shared by the client and its workers

    def setup(self) -> None:
        raise NotImplementedError

    def enqueue(self) -> None:
        raise NotImplementedError

    def enqueue_bulk(self, count: int) -> None:
        raise NotImplementedError

    def run_worker(self, burst: bool, expect: int) -> None:
        """In a worker process: run until stopped (or, in burst mode, until caught up)."""
        raise NotImplementedError

    def done(self) -> int:
        raise NotImplementedError

    def records(self, expected: int) -> list[Record]:
        """Every task's times; raises unless each of ``expected`` ran exactly once, successfully."""
        raise NotImplementedError

    def analyze(self) -> None:
        """Fresh planner statistics after a load."""

    def close(self) -> None:
        """Release connections."""


def exactly_once(rows: int, starts: int, ok: int, expected: int) -> None:
    if rows != expected or starts != expected or ok != expected:
        raise RuntimeError(
            f"exactly-once check failed: {rows} tasks, {starts} starts, {ok} successes "
            f"(expected {expected} each)"
        )


def now() -> float:
    return time.time()
