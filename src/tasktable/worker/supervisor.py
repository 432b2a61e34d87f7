"""The worker process: claims tasks into idle slots, keeps its lease, shuts down cleanly.

``Worker.run()`` registers a fresh random worker id, starts the slots (each a
long-lived child process by default) and the background loops (heartbeat and
rescuer, cancel watch, cleaner), then loops: claim as many due tasks as there
are idle slots in one statement, hand one to each, and wait until a slot
frees up, a wake-up says a task was enqueued (``listener.py``: LISTEN/NOTIFY
on PostgreSQL, ``PRAGMA data_version`` on SQLite), or the poll interval
passes. Without a wake-up (MariaDB) the poll adapts: short right after a
claim found work, doubling up to the poll interval while nothing is due.

- SIGTERM/SIGINT: stop claiming at once; running tasks get ``grace`` seconds
  to finish, then are stopped and released to ``pending`` (their attempt not
  charged). A second signal does that at once. Exit code 0; nothing is left
  ``running``.
- Declared dead (paused past ``dead_after``, e.g. SIGSTOP then SIGCONT): the
  heartbeat finds its row gone; the worker drops its runs without writing
  and carries on under a new id. A claim also requires a fresh heartbeat, so
  it never claims under the old id.
- Database outage: every loop retries with capped back-off; after
  ``max_db_outage`` the worker exits with code 3 so a supervisor restarts it.
- Periodic tasks and the cleaner: every worker tries each tick; the database
  gives it to exactly one (``periodic.py``).
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import signal
import socket
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING, Any

from ..core.status import TaskStatus
from ..core.task import Message, Task
from ..errors import DatabaseError
from ..storage.base import Outcome, WorkerInfo
from .completer import Completer, Ready
from .health import DbHealth
from .listener import Listener, can_listen
from .maintenance import CANCEL_POLL, CancelWatch, Cleaner, Every, Heartbeat, Rescuer
from .periodic import RESERVED_PREFIX, SCHEDULER_INTERVAL, Periodic, Scheduler, plan
from .queues import QueuePlan
from .slots import RELEASE_MESSAGE, Mode, SlotPool

if TYPE_CHECKING:
    from ..app import TaskTable

log = logging.getLogger("tasktable.worker")

EXIT_OK = 0
EXIT_DB_OUTAGE = 3
CLOSE_TIMEOUT = 15.0  # seconds to wait for slots to release their runs at exit
CLEANER_TICK = f"{RESERVED_PREFIX}cleaner"
MIN_POLL = 0.02  # seconds: the first poll after a claim found work, with no wake-up
#: While tasks flow (the last claim filled every idle slot) and one slot frees up, wait
#: this long for others before claiming: fewer, bigger claims.
COALESCE = 0.002
#: A task claimed ahead (prefetch) that waited this long for a slot goes back to
#: pending for any worker (a run longer than the recent ones holds the slots).
PREFETCH_MAX_WAIT = 1.0
PREFETCH_PER_SLOT = 20  # the default prefetch limit, per slot
LISTENER_JOIN = 2.0  # seconds to wait at exit for the wake-up listener (interrupted at once)


def new_worker_id() -> str:
    return secrets.token_hex(8)


class Worker:
    def __init__(
        self,
        table: TaskTable,
        *,
        slots: int = 5,
        queues: Sequence[str] = (),
        burst: bool = False,
        max_seconds: float | None = None,
        grace: float = 25.0,
        max_db_outage: float | None = None,
        mode: Mode = "process",
        verbose: bool = False,
        periodic: Sequence[Periodic] = (),
        queue_plan: QueuePlan | None = None,
        prefetch: int | None = None,
    ) -> None:
        if slots < 1:
            raise ValueError("A worker needs at least one slot.")
        if prefetch is not None and prefetch < 0:
            raise ValueError("prefetch must be 0 (off) or more.")
        #: At most this many tasks claimed ahead of a free slot, while runs are short
        #: (``SlotPool.room``): bigger claims, and a slot that frees up starts the next
        #: task at once instead of waiting for a claim.
        self.prefetch = PREFETCH_PER_SLOT * slots if prefetch is None else prefetch
        self.table = table
        self.settings = table.settings
        self.storage = table.storage
        self.size = slots
        self.queue_plan = queue_plan or QueuePlan(tuple(queues))
        self.queues = self.queue_plan.names
        self.rng = random.Random()
        self.burst = burst
        self.max_seconds = max_seconds
        self.grace = grace
        self.max_db_outage = (
            max_db_outage
            if max_db_outage is not None
            else self.settings.max_db_outage.total_seconds()
        )
        self.mode = mode
        self.dead_after = self.settings.dead_after.total_seconds()
        self.id = new_worker_id()
        self.wake = threading.Event()
        self.stop_event = threading.Event()  # stops the background loops
        self.stopping = False
        self.signals = 0
        self.release_deadline: float | None = None  # set by a stop request
        self.claimed = 0
        self.ids_used = [self.id]
        self.health = DbHealth()
        self._id_lock = threading.RLock()
        self.completer = Completer(
            self.storage,
            health=self.health,
            max_outage=self.max_db_outage,
            on_submit=self._poke,
        )
        self.pool = SlotPool(
            slots,
            self.storage,
            self.settings,
            self.completer,
            mode=mode,
            on_free=self._poke,
            verbose=verbose,
        )
        self.pool.health_failed = lambda exc: self.health.failed(exc, "Saving progress")
        # Outcomes go out in batches with the next claim; a slot starts no task while
        # this many wait, so a SIGKILL re-runs at most the running tasks and these.
        self.pool.unwritten_limit = max(slots, self.prefetch)
        self.heartbeat = Heartbeat(
            self.storage, lambda: self.id, self._held_ids, health=self.health
        )
        self.rescuer = Rescuer(self.storage, self.dead_after, health=self.health)
        self.loops: list[Every] = []
        self.listener: Listener | None = None
        # Checked now (cron, handler, args), so a bad schedule fails at start.
        self.scheduler = Scheduler(self.storage, plan(table, periodic))

    # -- lifecycle -----------------------------------------------------------------
    def request_stop(self) -> None:
        """Stop claiming; running tasks finish within the grace period."""
        if self.release_deadline is None:
            self.release_deadline = time.monotonic() + self.grace
        self.stopping = True
        self.wake.set()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.signals += 1
        if self.signals > 1:
            self.release_deadline = time.monotonic()
        log.warning(
            "Received %s: %s",
            signal.Signals(signum).name,
            f"stopping claims; running tasks have {self.grace:g}s to finish"
            if self.signals == 1
            else "releasing running tasks now",
        )
        self.request_stop()

    def _install_signals(self) -> dict[int, Any]:
        """The worker's SIGTERM/SIGINT handlers; returns those they replace."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        return {
            signum: signal.signal(signum, self._on_signal)
            for signum in (signal.SIGTERM, signal.SIGINT)
        }

    @staticmethod
    def _restore_signals(previous: dict[int, Any]) -> None:
        """Put back what the program had (a worker run inside it, like the demo's, must
        not leave Ctrl-C meaning "stop a worker that is gone")."""
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)

    def _info(self) -> WorkerInfo:
        return WorkerInfo(
            id=self.id,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            slots=self.size,
            queues=self.queues,
        )

    def run(self) -> int:
        """Run until stopped (or, in burst mode, until nothing is due). Returns the exit code."""
        previous = self._install_signals()
        try:
            return self._run()
        finally:
            self._restore_signals(previous)

    def _run(self) -> int:
        self.storage.register_worker(self._info())
        self.heartbeat.last_ok = time.monotonic()
        log.info(
            "Worker %s started (pid %d): %d %s slot(s), queues %s",
            self.id,
            os.getpid(),
            self.size,
            self.mode,
            self.queue_plan.describe(),
        )
        self.pool.start()
        self._start_background()
        code = EXIT_OK
        try:
            code = self._claim_loop()
        finally:
            self._shutdown(code)
        return code

    def _start_background(self) -> None:
        hb = self.settings.heartbeat_interval.total_seconds()
        cleaner = Cleaner(self.storage, self.settings.retention.total_seconds())
        watch = CancelWatch(self.storage, self._held_ids, self._cancel_requested)
        self.loops = [
            Every("tasktable-heartbeat", hb, self._pulse, self.stop_event, health=self.health),
            Every(
                "tasktable-cancel-watch",
                CANCEL_POLL,
                watch.run_once,
                self.stop_event,
                health=self.health,
            ),
            Every(
                "tasktable-cleaner",
                self.settings.clean_interval.total_seconds(),
                lambda: self._clean(cleaner),
                self.stop_event,
                first=5.0,
                health=self.health,
            ),
            Every(
                "tasktable-scheduler",
                SCHEDULER_INTERVAL,
                self.scheduler.run_once,
                self.stop_event,
                first=0.5,
                health=self.health,
            ),
        ]
        for loop in self.loops:
            loop.start()
        if can_listen(self.storage):
            self.listener = Listener(self.storage, self.queues, self.wake, self.stop_event)
            self.listener.start()

    def _clean(self, cleaner: Cleaner) -> int:
        """Clean once per ``clean_interval`` tick, by whichever worker takes the tick."""
        interval = self.settings.clean_interval.total_seconds()
        now = self.storage.server_now().timestamp()
        tick = datetime.fromtimestamp(now - now % interval, UTC)
        won, _ = self.storage.take_tick(CLEANER_TICK, tick, None)
        return cleaner.run_once(self.stop_event) if won else 0

    def _poke(self) -> None:
        """Wake the claim loop (each outcome handed in, each slot freed). Setting an
        Event takes its lock and notifies: skipped while it is set already. Safe: the
        loop clears it before it takes the outcomes and looks at the slots, so what
        was handed in before this check is seen by that pass."""
        if not self.wake.is_set():
            self.wake.set()

    def _held_ids(self) -> list[int]:
        """Tasks this worker holds: running in a slot, claimed ahead (buffered), or with
        an outcome not yet written."""
        held = (*self.pool.running(), *self.pool.buffered(), *self.completer.holding())
        return [task.id for task in held]

    def _cancel_requested(self, task_ids: list[int]) -> list[int]:
        """A buffered task ends ``cancelled`` without running; a running one is asked."""
        for task in self.pool.unbuffer(task_ids):
            note = Message(text="Cancelled at request before it started.", level="warning")
            self.completer.submit(
                task,
                Outcome(
                    status=TaskStatus.CANCELLED,
                    messages=(*task.messages, note),
                    progress=task.progress,
                    action_link=task.action_link,
                ),
            )
        return self.pool.cancel(task_ids)

    # -- heartbeat and rescue ------------------------------------------------------
    def _pulse(self) -> None:
        """One heartbeat; every few beats (and only after a good one) a rescue pass."""
        self._beat()
        hb = self.settings.heartbeat_interval.total_seconds()
        every = max(1, round(self.dead_after / 6 / hb)) if hb > 0 else 1
        if self.heartbeat.beats % every == 0:
            self.rescuer.run_once()

    def _beat(self) -> None:
        with self._id_lock:
            if self.heartbeat.run_once():
                return
            self._declared_dead()

    def _declared_dead(self) -> None:
        # Declared dead (e.g. paused past dead_after): its runs were rescued and its
        # late writes are fenced out. Stop those runs, and never claim under that id.
        old = self.id
        self.id = new_worker_id()
        self.ids_used.append(self.id)
        log.error(
            "Worker %s was declared dead (no heartbeat for %.0fs); its tasks were given to "
            "other workers. Continuing as %s",
            old,
            self.dead_after,
            self.id,
        )
        lost: list[str] = []
        for task in self.pool.running():
            try:
                current = self.storage.get(task.id)
            except Exception:
                current = None
            if current is None or current.claim_token != task.claim_token:
                lost.append(task.claim_token or "")
        self.pool.abandon(lost)
        dropped = self.pool.unbuffer()  # claimed ahead under the old id: rescued too
        self.pool.drop_batches()
        if dropped:
            log.warning("Worker %s: dropped %d task(s) claimed ahead", old, len(dropped))
        self.storage.register_worker(self._info())
        self.heartbeat.last_ok = time.monotonic()

    # -- the claim loop ------------------------------------------------------------
    def _claim_loop(self) -> int:
        started = time.monotonic()
        poll = self.settings.poll_interval.total_seconds()
        wait = poll
        backoff = 0.5
        flowing = False
        polled = False  # the last wait ran out (no slot freed, no wake-up)
        while not self.stopping:
            if self.max_seconds is not None and time.monotonic() - started >= self.max_seconds:
                log.info("Worker %s: --max-seconds reached; finishing running tasks", self.id)
                break
            if self.health.outage() > self.max_db_outage:
                log.error(
                    "Worker %s: the database has been unreachable for %.0fs "
                    "(TASKTABLE_MAX_DB_OUTAGE); exiting so that a supervisor restarts it",
                    self.id,
                    self.health.outage(),
                )
                return EXIT_DB_OUTAGE
            self.completer.give_back(self.pool.unbuffer(older_than=PREFETCH_MAX_WAIT))
            self.pool.offer(())  # buffered tasks to slots that became free or ready
            idle = self.pool.idle()
            if flowing and len(idle) == 1 and self.size > 1:
                time.sleep(COALESCE)
                idle = self.pool.idle()
            want = len(idle) + self.pool.room(self.prefetch)
            outcomes = self.completer.take()
            if want or outcomes:
                try:
                    claimed = self._step(outcomes, want)
                except Exception as exc:  # DatabaseError, or a driver error not wrapped
                    flowing = False
                    self.health.failed(exc, f"Worker {self.id}: claiming")
                    self.wake.wait(backoff)
                    self.wake.clear()
                    backoff = min(backoff * 2, 5.0)
                    continue
                backoff = 0.5
                if self.stopping and claimed:
                    self.completer.give_back(claimed)  # written by the shutdown's flush
                    break
                self.completer.give_back(self.pool.offer(claimed))
                self.claimed += len(claimed)
                if not want:
                    continue  # outcomes written; no slot was free to claim for
                flowing = len(claimed) == want
                if flowing:
                    continue  # there may be more due: fill the slots again
                if (
                    self.burst
                    and not claimed
                    and self.pool.busy == 0
                    and not self.completer.waiting
                    and not self.pool.buffered()
                ):
                    log.info("Worker %s: nothing due; burst run done", self.id)
                    break
                wait = self._next_wait(wait, poll, bool(claimed), polled)
            polled = not self.wake.wait(self._wait_for(wait))
            self.wake.clear()
        return EXIT_OK

    def _wait_for(self, wait: float) -> float:
        """``wait``, or less when a buffered task would wait too long by then."""
        oldest = self.pool.oldest_wait()
        if oldest is None:
            return wait
        return max(0.0, min(wait, PREFETCH_MAX_WAIT - oldest + 0.01))

    def _next_wait(self, last: float, poll: float, found: bool, polled: bool) -> float:
        """The poll interval with a wake-up; else short after work, doubling with each
        poll that found nothing (a claim after a slot freed up leaves it as it is)."""
        if self.listener is not None:
            return poll
        if found:
            return min(MIN_POLL, poll)
        return min(last * 2, poll) if polled else last

    def _step(self, outcomes: list[Ready], limit: int) -> list[Task]:
        """Write the outcomes slots handed in and claim up to ``limit`` tasks: in one
        statement or transaction where the database allows (``finish_and_claim``)."""
        if not outcomes:
            return self._claim(limit) if limit else []
        final = [r for r in outcomes if r.outcome.status.is_final]
        if len(final) < len(outcomes):  # retries and releases: their own transaction
            self.completer.write([r for r in outcomes if not r.outcome.status.is_final])
        if not final:
            return self._claim(limit) if limit else []
        try:
            oks, claimed = self._claim_with(limit, final)
        except Exception:
            self.completer.write(final)  # on their own, with the completer's retry rules
            raise
        self.completer.settle(final, oks)
        return claimed

    def _claim(self, limit: int) -> list[Task]:
        return self._claim_with(limit, [])[1]

    def _claim_with(self, limit: int, outcomes: list[Ready]) -> tuple[list[bool], list[Task]]:
        """Claim up to ``limit`` tasks round by round of the queue plan; the first
        round also writes ``outcomes``. Returns (per outcome: written?, claimed)."""
        oks: list[bool] = []
        with self._id_lock:
            if self.heartbeat.age() > self.dead_after / 2:
                # Paused, or the heartbeat thread is stuck: prove we are alive first.
                self._beat()
            claimed: list[Task] = []
            alive = self.dead_after / 2
            for group in self.queue_plan.rounds(self.rng):
                want = limit - len(claimed)
                try:
                    if outcomes:
                        items = [(r.task, r.outcome) for r in outcomes]
                        oks, got = self.storage.finish_and_claim(
                            items, self.id, group, want, alive_within=alive
                        )
                        outcomes = []
                    else:
                        got = self.storage.claim(self.id, group, want, alive_within=alive)
                    claimed += got
                except Exception as exc:
                    if not claimed and not oks:
                        raise
                    # Keep what the earlier rounds did: those tasks are ours to run.
                    self.health.failed(exc, f"Worker {self.id}: claiming")
                    return oks, claimed
                if len(claimed) >= limit:
                    break
        self.health.ok()
        return oks, claimed

    # -- shutdown ------------------------------------------------------------------
    def _shutdown(self, code: int) -> None:
        self.stopping = True
        self.completer.give_back(self.pool.unbuffer())  # claimed ahead: pending again
        if code == EXIT_DB_OUTAGE:
            self.completer.stop.set()  # nothing can be written; the rescuers will see to it
            self.release_deadline = time.monotonic()
        # Burst and --max-seconds runs wait for running tasks; a stop request (signal)
        # waits at most the grace period, a second signal not at all.
        while self.pool.busy:
            if self.release_deadline is not None and time.monotonic() >= self.release_deadline:
                break
            self.completer.flush()  # runs that end meanwhile are written as they end
            self.wake.wait(0.05)
            self.wake.clear()
        self.pool.stop_runs()
        left = self.pool.close(CLOSE_TIMEOUT)
        self.completer.flush()
        for task in left:  # a slot that did not get to release its run in time
            self._release_left(task)
        self.stop_event.set()
        if self.listener is not None:  # its connection closed before the worker's row goes
            self.listener.interrupt()
            self.listener.thread.join(LISTENER_JOIN)
        try:
            self.storage.deregister_worker(self.id)
        except DatabaseError as exc:
            log.warning("Worker %s: could not deregister: %s", self.id, exc)
        log.info("Worker %s stopped", self.id)

    def _release_left(self, task: Task) -> None:
        try:
            if self.storage.release(task, Message(text=RELEASE_MESSAGE, level="warning")):
                log.warning("Task %s (%s) released to pending at shutdown", task.id, task.name)
        except DatabaseError as exc:
            log.error("Task %s: could not release it at shutdown: %s", task.id, exc)
