"""Persist outcomes: one fenced write per run, retried through database outages.

A slot hands its outcome in with :meth:`Completer.submit` and is free at once;
the claim loop takes what was handed in (:meth:`Completer.take`) and writes it
together with its next claim, in one statement or transaction
(``Storage.finish_and_claim``), then says what was written
(:meth:`Completer.settle`). Until then the run is still this worker's: its
heartbeat keeps the lease (:meth:`Completer.holding`), and a worker that
stops writes what is left first (:meth:`Completer.flush`).

:meth:`Completer.complete` writes one outcome and blocks until it is written.
Outcomes that are ready together are written together: while one write is in
flight, the outcomes handed in meanwhile queue up, and the next write persists
them all in one transaction (``Storage.finish_many``: each row still fenced by
its own claim token, each reported written or lease lost). A batch that fails
(there, or combined with a claim) is retried one outcome at a time, with the
rules below.

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
from collections.abc import Callable, Sequence

from ..core.status import TaskStatus
from ..core.task import Message, Task
from ..storage.base import Outcome, Storage
from .health import DbHealth

log = logging.getLogger("tasktable.worker")

MAX_MESSAGES = 50
MAX_TEXT = 4000
MAX_ERROR = 60_000


class Ready:
    """One outcome handed in, waiting for its write (or to lead the next one).

    ``done`` (an Event: a lock and a condition) only for :meth:`Completer.complete`,
    which waits on it; an outcome a slot hands in (one per run) needs none."""

    __slots__ = ("done", "lead", "ok", "outcome", "task")

    def __init__(self, task: Task, outcome: Outcome, *, waits: bool = False) -> None:
        self.task = task
        self.outcome = outcome
        self.ok = False
        self.lead = False
        self.done: threading.Event | None = threading.Event() if waits else None

    def finished(self) -> None:
        if self.done is not None:
            self.done.set()


class Completer:
    def __init__(
        self,
        storage: Storage,
        *,
        health: DbHealth | None = None,
        max_outage: float = 300.0,
        stop: threading.Event | None = None,
        on_submit: Callable[[], None] = lambda: None,
    ) -> None:
        self.storage = storage
        self.on_submit = on_submit
        self.health = health or DbHealth()
        self.max_outage = max_outage
        self.stop = stop or threading.Event()
        self.completed = 0
        self.lost = 0
        self.unsaved = 0
        self.batches = 0  # writes of more than one outcome
        self._lock = threading.Lock()
        self._ready: list[Ready] = []
        self._writing = False
        self._submitted: list[Ready] = []
        self._held: dict[int, Task] = {}  # handed in, not yet settled

    # -- handed in by slots, written by the claim loop -------------------------------
    def submit(self, task: Task, outcome: Outcome) -> None:
        """Hand an outcome in without waiting; the claim loop writes it next."""
        with self._lock:
            self._submitted.append(Ready(task, outcome))
            self._held[task.id] = task
        self.on_submit()

    def give_back(self, tasks: Sequence[Task]) -> None:
        """Hand in tasks claimed ahead that never started: pending again, as they
        were, their attempt not charged (written with the next step, as any outcome)."""
        for task in tasks:
            outcome = Outcome(
                status=TaskStatus.PENDING,
                messages=task.messages,
                progress=task.progress,
                action_link=task.action_link,
                charge_attempt=False,
            )
            self.submit(task, outcome)

    def take(self) -> list[Ready]:
        """The outcomes handed in since the last take (the caller must settle them)."""
        with self._lock:
            batch, self._submitted = self._submitted, []
        return batch

    def settle(self, batch: Sequence[Ready], oks: Sequence[bool]) -> None:
        """Record what a combined write did: per outcome, written or lease lost."""
        for item, ok in zip(batch, oks, strict=True):
            item.ok = self._written(item.task, item.outcome, ok)
        self._release(batch)

    def write(self, batch: Sequence[Ready]) -> None:
        """Write taken outcomes on their own, with every rule of :meth:`complete`."""
        try:
            self._write(list(batch))
        finally:
            self._release(batch)

    def flush(self) -> None:
        """Write everything handed in and not yet taken."""
        batch = self.take()
        if batch:
            self.write(batch)

    def holding(self) -> list[Task]:
        """Runs whose outcome is handed in but not yet written: still this worker's."""
        with self._lock:
            return list(self._held.values())

    @property
    def unwritten(self) -> int:
        """Outcomes handed in and not yet written (or being written)."""
        with self._lock:
            return len(self._held)

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._submitted)

    def _release(self, batch: Sequence[Ready]) -> None:
        with self._lock:
            for item in batch:
                self._held.pop(item.task.id, None)

    def complete(self, task: Task, outcome: Outcome) -> bool:
        """Write the outcome; False when it was not written (lease lost, or given up).

        Blocks until written. When another write is in flight this one waits for
        it, then goes out with every outcome handed in meanwhile, in one batch."""
        item = Ready(task, outcome, waits=True)
        done = item.done
        assert done is not None
        with self._lock:
            self._ready.append(item)
            lead = not self._writing
            self._writing = True
        if not lead:
            done.wait()
            if not item.lead:
                return item.ok
        self._lead()
        return item.ok

    def _lead(self) -> None:
        """Write what is ready, then hand the lead to the first outcome queued since."""
        with self._lock:
            batch, self._ready = self._ready, []
        try:
            self._write(batch)
        finally:  # even on a bug: no slot waits forever on this batch
            for item in batch:
                item.finished()
            self._hand_on()

    def _hand_on(self) -> None:
        with self._lock:
            if not self._ready:
                self._writing = False
                return
            heir = self._ready[0]
        heir.lead = True
        heir.finished()

    def _write(self, batch: list[Ready]) -> None:
        if len(batch) > 1:
            try:
                oks = self.storage.finish_many([(i.task, i.outcome) for i in batch])
            except Exception as exc:  # retried one by one, with the rules of each
                log.debug("A batch of %d outcomes failed (%s); one by one", len(batch), exc)
            else:
                self.health.ok()
                self.batches += 1
                for item, ok in zip(batch, oks, strict=True):
                    item.ok = self._written(item.task, item.outcome, ok)
                return
        for item in batch:
            item.ok = self._complete_one(item.task, item.outcome)

    def _complete_one(self, task: Task, outcome: Outcome) -> bool:
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
        return self._written(task, outcome, ok)

    def _written(self, task: Task, outcome: Outcome, ok: bool) -> bool:
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
