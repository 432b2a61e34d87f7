"""Persist outcomes: one fenced write per run, retried through database outages.

While the database is unreachable the write is retried with capped back-off
(the run stays with this worker, whose heartbeat keeps its lease once the
database is back). If the database answers but refuses the write itself (say
the messages are too big for the column), a trimmed outcome is written
instead; if even that is refused the run is given up: the worker stops
heartbeating it, so the rescuer takes it back after ``dead_after``.
"""

from __future__ import annotations

import logging
import threading

from ..core.task import Message, Task
from ..storage.base import Outcome, Storage
from .health import DbHealth

log = logging.getLogger("tasktable.worker")

MAX_MESSAGES = 50
MAX_TEXT = 4000
MAX_ERROR = 60_000


class Completer:
    def __init__(
        self,
        storage: Storage,
        *,
        health: DbHealth | None = None,
        max_outage: float = 300.0,
        stop: threading.Event | None = None,
    ) -> None:
        self.storage = storage
        self.health = health or DbHealth()
        self.max_outage = max_outage
        self.stop = stop or threading.Event()
        self.completed = 0
        self.lost = 0
        self.unsaved = 0

    def complete(self, task: Task, outcome: Outcome) -> bool:
        """Write the outcome; False when it was not written (lease lost, or given up)."""
        delay = 0.1
        refused = 0
        while True:
            try:
                ok = self.storage.finish(task, outcome)
                self.health.ok()
                break
            except Exception as exc:  # DatabaseError, or a driver error not wrapped
                if not transient(exc) and self._reachable():
                    refused += 1
                    log.error("Task %s: the database refused its outcome: %s", task.id, exc)
                    if refused == 2:
                        outcome = trimmed(outcome, exc)
                    elif refused >= 4:
                        self.unsaved += 1
                        log.error("Task %s: giving up its outcome; it will be rescued", task.id)
                        return False
                else:
                    self.health.failed(exc, f"Saving the outcome of task {task.id}")
                    if self.health.outage() > self.max_outage:
                        self.unsaved += 1
                        return False
                if self.stop.wait(delay):
                    self.unsaved += 1
                    return False
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

    def _reachable(self) -> bool:
        try:
            self.storage.server_now()
        except Exception:
            return False
        self.health.ok()
        return True


#: Driver errors that mean "not now" (connection lost, lock wait, server going away),
#: never "this write is wrong"; matched by name: only storage/ imports the drivers.
_TRANSIENT = {"OperationalError", "InterfaceError", "DisconnectionError", "TimeoutError"}


def transient(exc: BaseException) -> bool:
    """Whether a failed write is worth retrying as it is (the database is busy or away)."""
    cause = exc.__cause__ or exc
    return bool(getattr(cause, "connection_invalidated", False)) or (
        type(cause).__name__ in _TRANSIENT
    )


def trimmed(outcome: Outcome, exc: BaseException) -> Outcome:
    """The outcome cut to sizes every database takes, saying what was cut."""
    messages = [
        Message(text=m.text[:MAX_TEXT], level=m.level, time=m.time)
        for m in outcome.messages[-MAX_MESSAGES:]
    ]
    messages.append(
        Message(
            text=f"The full outcome could not be saved ({str(exc)[:500]}); it was trimmed.",
            level="warning",
        )
    )
    return Outcome(
        status=outcome.status,
        messages=tuple(messages),
        error=outcome.error[-MAX_ERROR:] if outcome.error else outcome.error,
        progress=outcome.progress,
        action_link=None,
        run_at=outcome.run_at,
        charge_attempt=outcome.charge_attempt,
    )
