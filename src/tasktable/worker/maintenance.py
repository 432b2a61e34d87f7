"""Background loops beside the claim loop: heartbeat, rescuer, cancel watch, cleaner.

Each has ``run_once()`` for tests, and runs on a thread of the worker (see
:class:`Every`), so a long clean never delays a heartbeat.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from ..core.status import FINAL_STATUSES
from ..errors import DatabaseError, TaskTableError
from ..storage.base import Storage
from .health import DbHealth

log = logging.getLogger("tasktable.worker")

MAX_LOST = 3
CANCEL_POLL = 1.0  # seconds between checks for cancel requests of running tasks


class Heartbeat:
    """Stamps the worker row and the runs it holds; notices when it was declared dead."""

    def __init__(
        self,
        storage: Storage,
        worker_id: Callable[[], str],
        task_ids: Callable[[], Sequence[int]] = lambda: (),
        health: DbHealth | None = None,
    ) -> None:
        self.storage = storage
        self.worker_id = worker_id
        self.task_ids = task_ids
        self.health = health or DbHealth()
        self.beats = 0
        self.last_ok: float | None = None  # monotonic time of the last successful beat

    def run_once(self) -> bool:
        """True while the worker's row exists; False once it was declared dead."""
        alive = self.storage.heartbeat(self.worker_id(), list(self.task_ids()))
        self.health.ok()
        self.beats += 1
        if alive:
            self.last_ok = time.monotonic()
        return alive

    def age(self) -> float:
        """Seconds since the last successful beat (infinite before the first)."""
        return float("inf") if self.last_ok is None else time.monotonic() - self.last_ok


class Rescuer:
    """Returns tasks of dead workers to pending (or ends them after 3 losses).

    It holds back while the database has been reachable for less than
    ``dead_after``: after an outage every heartbeat is old, and the other
    workers need that long to stamp theirs again.
    """

    def __init__(
        self,
        storage: Storage,
        dead_after: float,
        max_lost: int = MAX_LOST,
        health: DbHealth | None = None,
    ) -> None:
        self.storage = storage
        self.dead_after = dead_after
        self.max_lost = max_lost
        self.health = health or DbHealth()
        self.total = 0

    def run_once(self) -> list[int]:
        if not self.health.stable_for(self.dead_after):
            return []
        rescued = self.storage.rescue(self.dead_after, self.max_lost)
        if rescued:
            self.total += len(rescued)
            log.warning("Rescued %d task(s) of lost workers: %s", len(rescued), rescued)
        return rescued


class CancelWatch:
    """Asks the database which running tasks someone wants cancelled (about once a second)."""

    def __init__(
        self,
        storage: Storage,
        running: Callable[[], Sequence[int]],
        notify: Callable[[list[int]], object],
    ) -> None:
        self.storage = storage
        self.running = running
        self.notify = notify

    def run_once(self) -> list[int]:
        ids = list(self.running())
        if not ids:
            return []
        wanted = self.storage.cancel_requests(ids)
        if wanted:
            self.notify(wanted)
        return wanted


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
    """Runs ``action`` every ``interval`` seconds until ``stop`` is set.

    Database errors are reported to ``health`` (which logs them, throttled);
    other errors are logged. The loop never dies of an error.
    """

    def __init__(
        self,
        name: str,
        interval: float,
        action: Callable[[], object],
        stop: threading.Event,
        *,
        first: float | None = None,
        health: DbHealth | None = None,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.interval = interval
        self.action = action
        self.stop_event = stop
        self.first = interval if first is None else first
        self.health = health
        self.runs = 0

    def run(self) -> None:
        wait = self.first
        while not self.stop_event.wait(wait):
            wait = self.interval
            try:
                self.action()
            except DatabaseError as exc:
                if self.health is not None:
                    self.health.failed(exc, self.name)
                else:
                    log.warning("%s: %s", self.name, exc)
            except TaskTableError as exc:
                log.warning("%s: %s", self.name, exc)
            except Exception:
                log.exception("%s failed", self.name)
            self.runs += 1
