"""Persist outcomes: one fenced write per task, retried through short database outages."""

from __future__ import annotations

import logging
import time

from ..core.task import Task
from ..errors import DatabaseError
from ..storage.base import Outcome, Storage

log = logging.getLogger("tasktable.worker")


class Completer:
    def __init__(self, storage: Storage, *, give_up_after: float = 30.0) -> None:
        self.storage = storage
        self.give_up_after = give_up_after
        self.completed = 0
        self.lost = 0

    def complete(self, task: Task, outcome: Outcome) -> bool:
        """Write the outcome; False when the lease was lost (the result is discarded)."""
        deadline = time.monotonic() + self.give_up_after
        delay = 0.1
        while True:
            try:
                ok = self.storage.finish(task, outcome)
                break
            except DatabaseError as exc:
                if time.monotonic() + delay > deadline:
                    log.error("Task %s: could not save its outcome: %s", task.id, exc)
                    return False
                log.warning("Task %s: saving its outcome failed (%s); retrying", task.id, exc)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        if ok:
            self.completed += 1
            log.debug("Task %s (%s): %s", task.id, task.name, outcome.status.value)
        else:
            self.lost += 1
            log.warning(
                "Task %s (%s): lease lost; its %s outcome was discarded",
                task.id,
                task.name,
                outcome.status.value,
            )
        return ok
