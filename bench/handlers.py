"""The benchmark's task handlers: a no-op, and a 50 ms sleep."""

from __future__ import annotations

import time

from tasktable import RunningTask, handler

NOOP = "bench.handlers:noop"
SLEEP50 = "bench.handlers:sleep50"


@handler
def noop(task: RunningTask) -> None:
    """Does nothing: every microsecond a drain takes is the queue's own."""


@handler
def sleep50(task: RunningTask) -> None:
    time.sleep(0.05)
