"""Slots: each runs one task at a time and owns everything about that run.

A slot is a thread of the worker process around a runner (a child process by
default, or a thread; see ``runners.py``). For each task the supervisor hands
it, the slot starts the run, turns the runner's events into fenced writes
(progress, files), and ends the run one of these ways:

- the handler finished: its outcome is persisted by the completer;
- the timeout passed (the task's, else the handler's): the run is stopped and
  counts as a failed attempt, "timed out after Ns";
- a cancel was requested and the handler did not stop within the cancel
  grace: the run is stopped and the task ends ``cancelled``;
- the runner's process died: a failed attempt, and a fresh process;
- the worker is shutting down past its grace: the run is stopped and the task
  released to ``pending`` (the attempt not charged);
- the claim was lost (the worker was declared dead): the run is stopped and
  nothing is written.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ..core.status import TaskStatus
from ..core.task import ActionLink, Message, Progress, Task
from ..errors import DatabaseError
from ..settings import Settings
from ..storage.base import Outcome, Storage
from .completer import Completer
from .executor import failed
from .protocol import Attach, Done, Event, LogLine, Report, Started
from .reporter import StorageReporter
from .runners import ProcessRunner, Runner, RunnerDied, ThreadRunner

log = logging.getLogger("tasktable.worker")

Mode = Literal["process", "thread"]
MODES: tuple[Mode, ...] = ("process", "thread")
TICK = 0.25  # seconds between checks of deadlines and stop requests during a run
KILL_PATIENCE = 2.0  # seconds between SIGTERM and SIGKILL for a timeout or a cancel
SHUTDOWN_PATIENCE = 0.5  # the same when the worker's grace is over
#: Prefetch claims ahead only the tasks the slots should start within this many seconds
#: (from the average run): a buffered task waits about that long at most, and runs of
#: over a quarter second on average (5 slots) get no prefetch at all.
PREFETCH_HORIZON = 0.05
PREFETCH_WEIGHT = 0.2  # of the newest run in the moving average of run durations
PREFETCH_LONG_RUN = 0.25  # seconds: a slot running longer is not expected to free up soon
RELEASE_MESSAGE = "The worker shut down before this task finished; it will run again."
#: A process slot is sent up to this many buffered tasks behind the one it starts, in
#: one write: the process runs them back to back, with no round trip to the worker in
#: between (``ProcessRunner.begin(task, then=...)``). Only while runs are short (see
#: ``SlotPool.next_batch``); behind a run that turns out long (``PREFETCH_LONG_RUN``),
#: those not started are taken back to the buffer, for any free slot.
BATCH_MAX = 8


@dataclass
class Run:
    """One task in one slot: what the slot knows about it while it runs."""

    task: Task
    reporter: StorageReporter
    started: float
    timeout: float | None
    messages: tuple[Message, ...]
    progress: Progress | None = None
    link: ActionLink | None = None
    cancel_at: float | None = None
    abandon: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def deadline(self) -> float | None:
        return None if self.timeout is None else self.started + self.timeout


class Slot:
    """One slot: a thread of the worker around one runner."""

    def __init__(self, index: int, runner: Runner, pool: SlotPool) -> None:
        self.index = index
        self.name = f"slot-{index}"
        self.runner = runner
        self.pool = pool
        self.ready = False
        self.run: Run | None = None
        #: Tasks sent to the slot process behind ``run`` (a batch), in order; each
        #: starts when the one before ends. Guarded by the pool's lock.
        self.queued: deque[Task] = deque()
        self.tasks_done = 0
        self.restarts = 0
        # None: wake up and look. SimpleQueue: a put is one C call (Queue.put takes a
        # lock and a condition): the claim loop hands each task it starts through here.
        self._mail: queue.SimpleQueue[Task | None] = queue.SimpleQueue()
        self.thread = threading.Thread(
            target=self._loop, name=f"tasktable-{self.name}", daemon=True
        )

    # -- called by the supervisor ------------------------------------------------
    def assign(self, task: Task) -> None:
        with self.pool.lock:
            self._prepare(task)
        self._mail.put(task)

    def _prepare(self, task: Task) -> None:
        """The run of ``task`` in this slot (the caller holds the pool's lock)."""
        self.run = Run(
            task=task,
            reporter=StorageReporter(self.pool.storage, task),
            started=time.monotonic(),
            timeout=task.timeout if task.timeout else None,
            messages=task.messages,
            progress=task.progress,
            link=task.action_link,
        )

    def poke(self) -> None:
        self._mail.put(None)

    @property
    def idle(self) -> bool:
        return self.ready and self.run is None

    # -- the slot's thread -------------------------------------------------------
    def _loop(self) -> None:
        delay = 0.5
        try:
            while not self.pool.closing.is_set():
                if not self.ready:
                    try:
                        self.runner.ensure_started()
                    except RunnerDied as exc:
                        log.error("%s: cannot start its process: %s", self.name, exc)
                        self.pool.closing.wait(delay)
                        delay = min(delay * 2, 30.0)
                        continue
                    delay = 0.5
                    self.ready = True
                    self.pool.wake()
                try:
                    task = self._mail.get(timeout=0.5)
                except queue.Empty:
                    continue
                if task is not None:
                    self._execute(task)
        finally:
            self.runner.close()

    def _execute(self, first: Task) -> None:
        """Run ``first``, then whatever the prefetch buffer holds, one after another.

        A process slot takes a batch from the buffer with each task it starts (see
        :meth:`SlotPool.next_batch`): one write, and the process starts each task of
        it as soon as the one before has ended, while this thread writes the last one's
        outcome. Its ``Done`` read here means the next one has started."""
        run = self.run
        begin = True
        while run is not None:
            task = run.task
            try:
                outcome = self._start_and_watch(run) if begin else self._watch(run)
                if outcome is not None:  # written by the claim loop, with its next claim
                    self.pool.completer.submit(task, outcome)
            except Exception:  # a bug; the task stays with this worker until released
                log.exception("%s: failed while running task %s", self.name, task.id)
            finally:
                self.tasks_done += 1
                self.pool.ran(time.monotonic() - run.started)
                with self.pool.lock:
                    self.run = None
                    if self.queued:  # already running in the process
                        begin = False
                        self._prepare(self.queued.popleft())
                        self.pool.batched(self)
                    elif self.ready:
                        begin = True
                        task_next = self.pool.next_buffered()
                        if task_next is not None:
                            self._prepare(task_next)
                    run = self.run
        self.pool.wake()

    def _start_and_watch(self, run: Run) -> Outcome | None:
        run.started = time.monotonic()
        then: list[Task] = []
        if isinstance(self.runner, ProcessRunner):
            with self.pool.lock:
                then = self.pool.next_batch()
                self.queued.extend(then)
        if then:
            log.debug("%s: task %s, and %d queued behind it", self.name, run.task.id, len(then))
        try:
            self.runner.begin(run.task, then)
        except RunnerDied as exc:
            self._lost_runner()
            log.warning(
                "%s: its process was gone (%s) before task %s started; releasing it",
                self.name,
                exc,
                run.task.id,
            )
            return self._release(
                run,
                "The worker's slot process was gone before this task started; it will run again.",
            )
        return self._watch(run)

    def _watch(self, run: Run) -> Outcome | None:
        """Follow ``run`` (started) until it ends; its outcome, or None to write nothing."""
        while True:
            wait = self._wait_time(run)
            try:
                event = self.runner.next_event(wait)
            except RunnerDied as exc:
                self._lost_runner()
                return self._after_death(run, str(exc))
            if event is not None:
                outcome = self._handle(run, event)
                if outcome is not None:
                    return outcome
            stopped = self._check(run)
            if stopped is not None:
                return stopped if isinstance(stopped, Outcome) else None

    def _wait_time(self, run: Run) -> float:
        wait = TICK
        now = time.monotonic()
        for moment in (run.deadline, run.cancel_at):
            if moment is not None:
                wait = min(wait, max(0.0, moment - now))
        return wait

    def _lost_runner(self) -> None:
        """The slot process is gone: the tasks queued behind its run never started."""
        self.ready = False
        self.restarts += 1
        if isinstance(self.runner, ProcessRunner):
            self.runner.unstarted()  # the same tasks as ``queued``
        with self.pool.lock:
            queued, self.queued = list(self.queued), deque()
            self.pool.forget(queued)
        self.pool.completer.give_back(queued)

    def _stop(self, patience: float) -> str:
        how = self.runner.stop_task(patience)
        if isinstance(self.runner, ProcessRunner):
            self._lost_runner()
        return how

    # -- events --------------------------------------------------------------------
    def _handle(self, run: Run, event: Event) -> Outcome | None:
        """The run's outcome when ``event`` ends it."""
        if isinstance(event, LogLine):
            logging.getLogger(event.name).log(event.level, "[%s] %s", self.name, event.text)
        elif isinstance(event, Started):
            if run.timeout is None and event.timeout:
                run.timeout = float(event.timeout)
        elif isinstance(event, Report):
            run.messages, run.progress, run.link = event.messages, event.progress, event.link
            self._write(
                run,
                "progress",
                lambda: run.reporter.report(event.progress, event.messages, event.link),
            )
        elif isinstance(event, Attach):
            self._write(
                run,
                f"file {event.filename!r}",
                lambda: run.reporter.attach(event.filename, event.content_type, event.data),
            )
        elif isinstance(event, Done):
            return self._finished(run, event)
        # Skipped: a task taken back (``SlotPool.revoke``), no longer this slot's (it may
        # even be this run's task again, sent anew since): nothing to do. The run being
        # watched is never one of those: it started (it was sent after the revoke, or
        # the Done before it was read).
        return None

    def _write(self, run: Run, what: str, write: Callable[[], bool]) -> None:
        try:
            ok = write()
        except DatabaseError as exc:
            self.pool.health_failed(exc)
            log.warning("Task %s: %s not saved: %s", run.task.id, what, exc)
            return
        if not ok:
            run.abandon = True

    def _finished(self, run: Run, done: Done) -> Outcome:
        outcome = done.outcome
        if run.cancel_at is not None and (done.saw_cancel or outcome.status is TaskStatus.PENDING):
            note = Message(text="Cancelled at request; the handler stopped.", level="warning")
            return Outcome(
                status=TaskStatus.CANCELLED,
                messages=(*outcome.messages, note),
                progress=outcome.progress,
                action_link=outcome.action_link,
            )
        return outcome

    # -- deadlines and stop requests -----------------------------------------------
    def _check(self, run: Run) -> Outcome | Literal[True] | None:
        """An outcome (or True for "stopped, write nothing") when the run must end now."""
        now = time.monotonic()
        if self.queued and now - run.started >= PREFETCH_LONG_RUN:
            self.pool.requeue(self)  # a long run: what waits behind it, to other slots
        if run.abandon or run.reporter.lost:
            how = self._stop(SHUTDOWN_PATIENCE)
            log.warning(
                "Task %s: this worker lost its claim; its run was %s and nothing is written",
                run.task.id,
                how,
            )
            return True
        if self.pool.release_now.is_set():
            how = self._stop(SHUTDOWN_PATIENCE)
            log.warning("Task %s: grace period over; run %s, releasing it", run.task.id, how)
            return self._release(run, RELEASE_MESSAGE)
        if run.deadline is not None and now >= run.deadline:
            how = self._stop(KILL_PATIENCE)
            seconds = f"{run.timeout:g}s"
            log.error(
                "Task %s (%s) timed out after %s; %s", run.task.id, run.task.name, seconds, how
            )
            note = Message(text=f"Timed out after {seconds}; the worker stopped it.", level="error")
            return failed(
                run.task,
                (*run.messages, note),
                f"timed out after {seconds}",
                progress=run.progress,
                action_link=run.link,
            )
        if run.cancel_at is not None and now >= run.cancel_at:
            how = self._stop(KILL_PATIENCE)
            log.warning("Task %s: cancelled at request; %s", run.task.id, how)
            note = Message(
                text="Cancelled at request; the worker stopped it after "
                f"{self.pool.cancel_grace:g}s.",
                level="warning",
            )
            return Outcome(
                status=TaskStatus.CANCELLED,
                messages=(*run.messages, note),
                progress=run.progress,
                action_link=run.link,
            )
        return None

    def _after_death(self, run: Run, reason: str) -> Outcome:
        if self.pool.releasing.is_set():
            return self._release(run, RELEASE_MESSAGE)
        text = f"The slot process running this task died ({reason})."
        if run.cancel_at is not None:
            note = Message(text=f"Cancelled at request. {text}", level="warning")
            return Outcome(status=TaskStatus.CANCELLED, messages=(*run.messages, note))
        log.error("Task %s (%s): %s", run.task.id, run.task.name, text)
        return failed(
            run.task,
            (*run.messages, Message(text=text, level="error")),
            text,
            progress=run.progress,
            action_link=run.link,
        )

    def _release(self, run: Run, text: str) -> Outcome:
        return Outcome(
            status=TaskStatus.PENDING,
            messages=(*run.messages, Message(text=text, level="warning")),
            progress=run.progress,
            action_link=run.link,
            charge_attempt=False,
        )


class SlotPool:
    """The worker's slots; the supervisor assigns claimed tasks to idle ones."""

    def __init__(
        self,
        size: int,
        storage: Storage,
        settings: Settings,
        completer: Completer,
        *,
        mode: Mode = "process",
        on_free: Callable[[], None] = lambda: None,
        verbose: bool = False,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.size = size
        self.mode = mode
        self.storage = storage
        self.settings = settings
        self.completer = completer
        self.cancel_grace = settings.cancel_grace.total_seconds()
        self._on_free = on_free
        self.lock = threading.RLock()
        self.closing = threading.Event()  # slot threads exit when idle
        self.releasing = threading.Event()  # shutdown began: a dying run is released
        self.release_now = threading.Event()  # grace over: stop runs and release them
        self.slots = [Slot(i + 1, self._runner(i + 1, verbose), self) for i in range(size)]
        self.health_failed: Callable[[Exception], None] = lambda exc: None
        # Prefetch: claimed tasks waiting for the next free slot (see ``room``).
        self.buffer: deque[tuple[Task, float]] = deque()
        self.run_time: float | None = None  # moving average of run durations (s)
        #: Outcomes that may wait to be written before no slot starts another task (the
        #: worker sets it to its prefetch limit, at least the number of slots).
        self.unwritten_limit = size
        #: Tasks queued in a slot process (``Slot.queued``) whose cancel was requested,
        #: and the claims of queued tasks found lost: applied when they start.
        self.cancel_queued: set[int] = set()
        self.lost_queued: set[str] = set()

    def _runner(self, index: int, verbose: bool) -> Runner:
        name = f"tasktable-slot-{index}"
        if self.mode == "thread":
            return ThreadRunner(name, self.settings)
        return ProcessRunner(name, self.settings, verbose=verbose)

    def start(self) -> None:
        for slot in self.slots:
            slot.thread.start()

    def wake(self) -> None:
        self._on_free()

    def idle(self) -> list[Slot]:
        with self.lock:
            return [s for s in self.slots if s.idle] if not self.releasing.is_set() else []

    @property
    def busy(self) -> int:
        with self.lock:
            return sum(1 for s in self.slots if s.run is not None)

    @property
    def ready(self) -> int:
        with self.lock:
            return sum(1 for s in self.slots if s.ready)

    def runs(self) -> list[Run]:
        with self.lock:
            return [s.run for s in self.slots if s.run is not None]

    def running(self) -> list[Task]:
        return [r.task for r in self.runs()]

    def cancel(self, task_ids: Iterable[int]) -> list[int]:
        """Tell the handlers of these tasks that a cancel was requested; start the grace.
        A task queued in a slot process is told as it starts."""
        wanted = set(task_ids)
        noticed = []
        with self.lock:
            for slot in self.slots:
                run = slot.run
                if run is not None and run.task.id in wanted and run.cancel_at is None:
                    self._cancel_run(slot, run)
                    noticed.append(run.task.id)
                for task in slot.queued:
                    if task.id in wanted and task.id not in self.cancel_queued:
                        self.cancel_queued.add(task.id)
                        noticed.append(task.id)
        return noticed

    def _cancel_run(self, slot: Slot, run: Run) -> None:
        run.cancel_at = time.monotonic() + self.cancel_grace
        slot.runner.request_cancel(run.task.id)

    def abandon(self, claim_tokens: Iterable[str]) -> None:
        """Stop runs whose claim is gone, writing nothing for them."""
        lost = set(claim_tokens)
        with self.lock:
            for run in self.runs():
                if run.task.claim_token in lost:
                    run.abandon = True

    def drop_batches(self) -> None:
        """The worker was declared dead: its claims are gone. A task its slot process
        started behind its run (after :meth:`unbuffer` took back the others) is
        stopped as it comes up, writing nothing."""
        with self.lock:
            for slot in self.slots:
                self.lost_queued.update(t.claim_token or "" for t in slot.queued)

    def forget(self, tasks: Iterable[Task]) -> None:
        """Tasks queued in a slot process that will not start there (caller holds the lock)."""
        for task in tasks:
            self.cancel_queued.discard(task.id)
            self.lost_queued.discard(task.claim_token or "")

    def revoke(self, slot: Slot) -> list[Task]:
        """Take back the tasks queued in ``slot``'s process that it has not started
        (the caller holds the lock); they will never start there."""
        if not slot.queued or not isinstance(slot.runner, ProcessRunner):
            return []
        count = min(slot.runner.revoke(), len(slot.queued))
        back = [slot.queued.pop() for _ in range(count)][::-1]
        self.forget(back)
        return back

    def requeue(self, slot: Slot) -> None:
        """``slot``'s run is long: the tasks queued behind it that have not started go
        back to the front of the buffer, as claimed ahead when they were."""
        now = time.monotonic()
        with self.lock:
            self.buffer.extendleft((task, now) for task in reversed(self.revoke(slot)))

    def batched(self, slot: Slot) -> None:
        """``slot`` moved on to the next task of its batch (the caller holds the lock)."""
        run = slot.run
        assert run is not None
        if run.task.id in self.cancel_queued:
            self.cancel_queued.discard(run.task.id)
            self._cancel_run(slot, run)
        if run.task.claim_token in self.lost_queued:
            self.lost_queued.discard(run.task.claim_token or "")
            run.abandon = True

    def next_batch(self) -> list[Task]:
        """Buffered tasks to send to a process slot behind the task it starts (the
        caller holds the lock): only while runs are short (the batch should be done
        within ``PREFETCH_HORIZON``), no more than a fair share of the buffer among
        the ready slots, and within ``unwritten_limit`` (see :meth:`next_buffered`)."""
        if not self.buffer or self.releasing.is_set() or self.run_time is None:
            return []
        ready = sum(1 for slot in self.slots if slot.ready) or 1
        room = self.unwritten_limit - self.completer.unwritten - self._queued_count()
        count = min(
            BATCH_MAX,
            int(PREFETCH_HORIZON / max(self.run_time, 1e-6)),
            len(self.buffer) // ready,
            room,
        )
        return [self.buffer.popleft()[0] for _ in range(max(0, count))]

    def _queued_count(self) -> int:
        return sum(len(slot.queued) for slot in self.slots)

    def stop_runs(self) -> None:
        """The grace is over: stop every run and release its task."""
        self.releasing.set()
        self.release_now.set()

    def close(self, timeout: float) -> list[Task]:
        """Stop the slot threads; returns the tasks of runs that did not end in time."""
        self.releasing.set()
        self.closing.set()
        for slot in self.slots:
            slot.poke()
        deadline = time.monotonic() + timeout
        for slot in self.slots:
            slot.thread.join(max(0.0, deadline - time.monotonic()))
        return self.running()

    # -- prefetch --------------------------------------------------------------------
    def ran(self, seconds: float) -> None:
        """Record a run's duration (a moving average over the last runs or so)."""
        last = self.run_time
        self.run_time = seconds if last is None else last + (seconds - last) * PREFETCH_WEIGHT

    def room(self, prefetch: int) -> int:
        """How many tasks to claim beyond the idle slots: at most ``prefetch`` buffered,
        and no more than the slots should start within ``PREFETCH_HORIZON``, so that
        a task never waits long in the buffer for a slot."""
        if prefetch <= 0 or self.run_time is None:
            return 0
        now = time.monotonic()
        with self.lock:
            # A slot in a run longer than PREFETCH_LONG_RUN frees up at no foreseeable time:
            # it does not count (all of them in such runs: nothing claimed ahead).
            freeing = sum(
                1
                for slot in self.slots
                if slot.ready and (slot.run is None or now - slot.run.started < PREFETCH_LONG_RUN)
            )
            ahead = int(freeing * PREFETCH_HORIZON / max(self.run_time, 1e-6))
            return max(0, min(prefetch, ahead) - len(self.buffer) - self._queued_count())

    def offer(self, tasks: Sequence[Task]) -> list[Task]:
        """Start buffered tasks, then ``tasks``, on idle slots; buffer the rest. Returns
        those that may not wait in the buffer (``rerun_on_loss = False``: were the
        worker lost meanwhile, the rescuer could not tell it never started)."""
        refused: list[Task] = []
        now = time.monotonic()
        with self.lock:
            idle = self.idle()
            while idle and self.buffer and self._may_start():
                idle.pop(0).assign(self.buffer.popleft()[0])
            for task in tasks:
                if idle:
                    idle.pop(0).assign(task)
                elif task.rerun_on_loss and not self.releasing.is_set():
                    self.buffer.append((task, now))
                else:
                    refused.append(task)
        return refused

    def next_buffered(self) -> Task | None:
        """The oldest buffered task, for a slot that just finished (caller holds the lock).
        None while ``unwritten_limit`` outcomes wait to be written: a worker killed
        (SIGKILL) re-runs at most its running tasks and those."""
        if self.buffer and not self.releasing.is_set() and self._may_start():
            return self.buffer.popleft()[0]
        return None

    def _may_start(self) -> bool:
        return self.completer.unwritten + self._queued_count() < self.unwritten_limit

    def unbuffer(
        self, ids: Iterable[int] | None = None, *, older_than: float | None = None
    ) -> list[Task]:
        """Take tasks out of the buffer: these ids, those waiting longer than
        ``older_than`` seconds, or (neither given) all of them. Those queued in a slot
        process count as buffered until it starts them: taking one takes back every
        task that process has not started (the others go back to the buffer)."""
        wanted = set(ids) if ids is not None else None
        now = time.monotonic()
        with self.lock:
            if older_than is None:
                for slot in self.slots:
                    if any(wanted is None or t.id in wanted for t in slot.queued):
                        self.requeue(slot)
            keep: deque[tuple[Task, float]] = deque()
            taken: list[Task] = []
            for task, since in self.buffer:
                if (wanted is None or task.id in wanted) and (
                    older_than is None or now - since > older_than
                ):
                    taken.append(task)
                else:
                    keep.append((task, since))
            self.buffer = keep
        return taken

    def buffered(self) -> list[Task]:
        """Tasks claimed ahead: in the buffer, or queued in a slot process behind its run."""
        with self.lock:
            return [task for task, _ in self.buffer] + [
                task for slot in self.slots for task in slot.queued
            ]

    def oldest_wait(self) -> float | None:
        with self.lock:
            return time.monotonic() - self.buffer[0][1] if self.buffer else None

    def restarts(self) -> int:
        return sum(s.restarts for s in self.slots)
