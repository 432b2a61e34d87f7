"""Background loops beside the claim loop: heartbeat, rescuer and cleaner.

Each has ``run_once()`` for tests and runs on its own thread in a worker, so a
long clean never delays a heartbeat.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ..core.status import FINAL_STATUSES
from ..errors import TaskTableError
from ..storage.base import Storage

log = logging.getLogger("tasktable.worker")

MAX_LOST = 3


class Heartbeat:
    """Stamps the worker row and its running tasks; notices when it was declared dead."""

    def __init__(self, storage: Storage, worker_id: Callable[[], str]) -> None:
        self.storage = storage
        self.worker_id = worker_id
        self.beats = 0

    def run_once(self) -> bool:
        alive = self.storage.heartbeat(self.worker_id())
        self.beats += 1
        return alive


class Rescuer:
    """Returns tasks of dead workers to pending (or ends them after 3 losses)."""

    def __init__(self, storage: Storage, dead_after: float, max_lost: int = MAX_LOST) -> None:
        self.storage = storage
        self.dead_after = dead_after
        self.max_lost = max_lost

    def run_once(self) -> list[int]:
        rescued = self.storage.rescue(self.dead_after, self.max_lost)
        if rescued:
            log.warning("Rescued %d task(s) of lost workers: %s", len(rescued), rescued)
        return rescued


class Cleaner:
    """Deletes finished tasks older than the retention, in bounded batches."""

    def __init__(self, storage: Storage, retention: float, batch_size: int = 1000) -> None:
        self.storage = storage
        self.retention = retention
        self.batch_size = batch_size

    def run_once(self, stop: threading.Event | None = None) -> int:
        removed = 0
        statuses = sorted(FINAL_STATUSES)
        while stop is None or not stop.is_set():
            batch = self.storage.clean(self.retention, statuses, self.batch_size)
            removed += len(batch)
            if len(batch) < self.batch_size:
                break
        if removed:
            log.info("Cleaned %d finished task(s) older than the retention", removed)
        return removed


class Every(threading.Thread):
    """Runs ``action`` every ``interval`` seconds until ``stop`` is set; errors are logged."""

    def __init__(
        self,
        name: str,
        interval: float,
        action: Callable[[], object],
        stop: threading.Event,
        *,
        first: float | None = None,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.interval = interval
        self.action = action
        self.stop_event = stop
        self.first = interval if first is None else first

    def run(self) -> None:
        wait = self.first
        while not self.stop_event.wait(wait):
            wait = self.interval
            try:
                self.action()
            except TaskTableError as exc:
                log.warning("%s: %s", self.name, exc)
            except Exception:
                log.exception("%s failed", self.name)
