"""Where a slot runs its handler: a long-lived child process (default) or a thread.

A runner starts a task, yields its events, and can stop it. The slot around
it (``slots.py``) is the same for both, so timeouts, cancellation, crashes
and shutdown are handled in one place.

- :class:`ProcessRunner` keeps one child process per slot, reused task after
  task. Stopping a task really stops it (SIGTERM, then SIGKILL), and a crash
  (``os._exit``, a segfault, the memory cap) takes only that child down; the
  slot starts a fresh one. On Linux the child is a fork of multiprocessing's
  fork server (a clean, single-threaded interpreter started once per worker,
  which has imported the slot's code: see ``forkserver.py``); elsewhere, or
  when the fork server cannot start, a freshly ``spawn``-ed interpreter.
  Either way it inherits none of the worker's threads, locks or connections.
- :class:`ThreadRunner` runs tasks on a thread of the worker process (one per
  slot, reused): cheaper, for I/O-bound handlers, but a thread cannot be
  killed. A timeout or a cancel there only discards the result (the thread
  runs on until its handler returns, and the slot gets a fresh thread), and a
  handler that crashes the process takes the worker and every slot with it.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import signal
import sys
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any, Protocol

from ..core.task import ActionLink, Message, Progress, Task
from ..settings import Settings
from .executor import execute
from .protocol import (
    Attach,
    Done,
    Event,
    FrameReader,
    Report,
    Started,
    decode_event,
    encode_command,
    encode_run,
    frame,
)

log = logging.getLogger("tasktable.worker")

START_TIMEOUT = 60.0  # seconds a new slot process may take to import and say ready
_MAIN_LOCK = threading.Lock()
#: What the fork server imports before it forks slot processes: the slot's own
#: code; never ``__main__``, a user's module or SQLAlchemy.
FORKSERVER_PRELOAD = ["tasktable.worker.forkserver"]
_CONTEXT_LOCK = threading.Lock()
_context: BaseContext | None = None


def slot_context() -> BaseContext:
    """The multiprocessing context slot processes start from, chosen once per process.

    On Linux ``forkserver``, preloaded with the slot's code; the fork server is
    started at the first call (the worker creating its slots), so it imports
    while the worker connects to its database. Elsewhere, or when the fork
    server cannot start: ``spawn``.
    """
    global _context
    with _CONTEXT_LOCK:
        if _context is None:
            _context = _start_fork_server() or multiprocessing.get_context("spawn")
        return _context


def _start_fork_server() -> BaseContext | None:
    if (
        not sys.platform.startswith("linux")
        or "forkserver" not in multiprocessing.get_all_start_methods()
    ):
        return None
    try:
        from multiprocessing import forkserver

        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(FORKSERVER_PRELOAD)
        forkserver.ensure_running()
    except Exception as exc:  # every slot process is spawned instead
        log.warning("Cannot start the fork server for slot processes (%s); using spawn", exc)
        return None
    return ctx


def _fall_back_to_spawn(reason: BaseException) -> BaseContext:
    """The fork server failed to start a slot process: this worker spawns them from now on."""
    global _context
    with _CONTEXT_LOCK:
        if _context is None or _context.get_start_method() != "spawn":
            log.warning(
                "The fork server could not start a slot process (%s: %s); using spawn",
                type(reason).__name__,
                reason,
            )
            _context = multiprocessing.get_context("spawn")
        return _context


@contextlib.contextmanager
def _cli_main_hidden() -> Iterator[None]:
    """While starting a slot process: when ``__main__`` is the ``tasktable`` console
    script, hide its path so the child does not run it again (spawn, and forkserver's
    children too, re-import a main script; this one only imports the CLI, and
    SQLAlchemy with it: time and memory in every slot). Any other main script (a
    user's own, which may define handlers) is left alone: the child imports it as
    before. Slots start in parallel: the check and the start happen under one lock."""
    with _MAIN_LOCK:
        main = sys.modules.get("__main__")
        cli = sys.modules.get("tasktable.cli.main")
        if (
            main is None
            or cli is None
            or getattr(main, "__spec__", None) is not None
            or getattr(main, "run", None) is not getattr(cli, "run", object())
            or not hasattr(main, "__file__")
        ):
            yield
            return
        path = main.__dict__.pop("__file__")
        try:
            yield
        finally:
            main.__file__ = path


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class RunnerDied(Exception):
    """The runner's process ended while running a task (or could not start).

    Its text says how, e.g. "exit code 13" or "killed by signal SIGSEGV".
    """


class Runner(Protocol):
    def ensure_started(self) -> None:
        """Make the runner ready for a task; raises :class:`RunnerDied` if it cannot."""

    def begin(self, task: Task, then: Sequence[Task] = ()) -> None:
        """Start running ``task`` (then each of ``then``, where the runner can queue
        them); raises :class:`RunnerDied` if the runner is gone."""

    def next_event(self, timeout: float) -> Event | None:
        """The next event of the running task, None after ``timeout`` seconds."""

    def request_cancel(self, task_id: int) -> None: ...

    def stop_task(self, patience: float) -> str:
        """Stop the running task now; returns how (for logs)."""

    def close(self) -> None: ...


def describe_exit(code: int | None) -> str:
    if code is None:
        return "it did not exit"
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class ProcessRunner:
    """One child process for a slot (forked by the fork server, or spawned), reused.

    ``start_method`` forces one ("spawn" or "forkserver"); by default
    :func:`slot_context` picks.
    """

    def __init__(
        self,
        name: str,
        settings: Settings,
        *,
        verbose: bool = False,
        start_method: str | None = None,
    ) -> None:
        self.name = name
        self.forced = start_method is not None
        self.ctx = multiprocessing.get_context(start_method) if self.forced else slot_context()
        self.config: dict[str, Any] = {
            "parent_pid": os.getpid(),
            "handlers": list(settings.handlers.patterns)
            if settings.handlers.patterns is not None
            else None,
            "max_file_bytes": settings.max_file_bytes,
            "max_memory": settings.max_memory,
            "verbose": verbose,
        }
        self.process: BaseProcess | None = None
        #: Tasks sent to the process and not ended (no Done or Skipped read yet), in
        #: order: the first runs (or is about to), the others wait in the pipe.
        self.sent: deque[Task] = deque()
        self.conn: Connection | None = None  # commands to the child
        self.events: Connection | None = None  # events from the child, read by ``frames``
        self.frames: FrameReader | None = None
        self.cancel_flag: Any = None
        self.terminate_flag: Any = None
        #: The batch gate (see :meth:`revoke`): runs are numbered 1, 2, ... in the order
        #: sent to this process; ``started_runs`` is the number of the last one it
        #: started, ``head`` the number of the first run of the last :meth:`begin` (it
        #: always starts), and it skips (answers ``Skipped``) every other run numbered
        #: up to ``skip_through``.
        self.gate: Any = None
        self.started_runs: Any = None
        self.skip_through: Any = None
        self.head: Any = None
        self.sent_runs = 0
        self.lost: list[Task] = []  # see unstarted()
        self.started = 0  # processes started, for logs and tests

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    def ensure_started(self) -> None:
        if self.alive() and self.conn is not None:
            return
        self._discard()
        from .child import child_main

        # Two one-way pipes (commands in, events out): a pipe's write and wake-up cost
        # less than a socket pair's, and each run crosses them twice.
        commands, to_child = self.ctx.Pipe(duplex=False)
        from_child, events = self.ctx.Pipe(duplex=False)
        self.cancel_flag = self.ctx.RawValue("q", 0)
        self.terminate_flag = self.ctx.RawValue("b", 0)
        self.gate = self.ctx.Lock()
        self.started_runs = self.ctx.RawValue("q", 0)
        self.skip_through = self.ctx.RawValue("q", 0)
        self.head = self.ctx.RawValue("q", 0)
        self.sent_runs = 0
        try:
            process = self._start(
                child_main,
                (
                    commands,
                    self.config,
                    self.cancel_flag,
                    self.terminate_flag,
                    events,
                    (self.gate, self.started_runs, self.skip_through, self.head),
                ),
            )
        except RunnerDied:
            for end in (commands, to_child, from_child, events):
                end.close()
            raise
        commands.close()
        events.close()  # the child's death closes the last copy: end of file here
        self.process, self.conn, self.events = process, to_child, from_child
        self.frames = FrameReader(from_child.fileno())
        self.started += 1
        try:
            hello = self.frames.read(START_TIMEOUT)
        except (EOFError, OSError):
            process.join(1.0)
            code = process.exitcode
            self._discard()
            raise RunnerDied(f"the slot process failed to start ({describe_exit(code)})") from None
        if hello is None:
            self.stop_task(0.5)
            raise RunnerDied(f"the slot process did not start within {START_TIMEOUT:.0f}s")
        if hello != b'{"op":"ready"}':
            self.stop_task(0.5)
            raise RunnerDied(f"the slot process said {hello[:100]!r} instead of ready")
        log.debug("%s: process %s ready", self.name, process.pid)

    def _start(self, target: Any, args: tuple[Any, ...]) -> BaseProcess:
        """Start the child; when the fork server fails, the worker switches to spawn."""
        try:
            return self._start_with(self.ctx, target, args)
        except (OSError, EOFError) as exc:
            if self.forced or self.ctx.get_start_method() != "forkserver":
                raise RunnerDied(f"the slot process could not start: {exc}") from exc
            self.ctx = _fall_back_to_spawn(exc)
        try:
            return self._start_with(self.ctx, target, args)
        except (OSError, EOFError) as exc:
            raise RunnerDied(f"the slot process could not start: {exc}") from exc

    def _start_with(self, ctx: Any, target: Any, args: tuple[Any, ...]) -> BaseProcess:
        process: BaseProcess = ctx.Process(
            target=target,
            args=args,
            name=self.name,
            daemon=False,  # a daemonic process may not start processes; handlers may
        )
        with _cli_main_hidden():
            process.start()
        return process

    def begin(self, task: Task, then: Sequence[Task] = ()) -> None:
        """Start ``task``; the process runs each of ``then`` after it, in order, as
        soon as the one before has ended (its ``Done`` read here means the next has
        started), unless :meth:`revoke` takes them back first. One write for all.

        When the process dies, the task it was running fails with it, and those of
        ``then`` it had not reached are in :meth:`unstarted`."""
        if self.conn is None:
            raise RunnerDied("not running")
        self.cancel_flag.value = 0
        tasks = (task, *then)
        # Set before the runs are written, so before the process reads them: a run
        # taken back earlier may still wait in the pipe, and a revoke may come before
        # this one starts; it starts all the same (the slot counts it as started).
        self.head.value = self.sent_runs + 1
        self.sent_runs += len(tasks)
        data = b"".join([frame(encode_run(t)) for t in tasks])
        self.sent.clear()
        self.sent.extend(tasks)
        try:
            _write_all(self.conn.fileno(), data)
        except (OSError, ValueError) as exc:
            raise RunnerDied(self._death()) from exc

    def revoke(self) -> int:
        """Take back the tasks sent that the process has not started: it will start none
        of them (each is answered ``Skipped`` as it comes to it). Returns how many there
        are: the last ones sent. 0 when the process cannot say (it died holding the gate,
        say): those tasks stay with it, and come back by :meth:`unstarted`."""
        gate = self.gate
        if gate is None or not gate.acquire(timeout=1.0):
            return 0
        try:
            return self._take_back()
        finally:
            gate.release()

    def _take_back(self) -> int:
        """:meth:`revoke`'s work, under the gate: the runs after the last begin's first
        one that have not started."""
        self.skip_through.value = self.sent_runs
        count = max(0, self.sent_runs - max(int(self.started_runs.value), int(self.head.value)))
        for _ in range(min(count, len(self.sent))):
            self.sent.pop()  # their Skipped, when it comes, ends nothing here
        return count

    def unstarted(self) -> list[Task]:
        """After the process died or was stopped: the tasks sent that it never
        started (all sent but the first, which failed or was stopped with it)."""
        tasks, self.lost = self.lost, []
        return tasks

    def next_event(self, timeout: float) -> Event | None:
        frames = self.frames
        if frames is None:
            raise RunnerDied("not running")
        try:
            raw = frames.read(max(0.0, timeout))
        except (EOFError, OSError):
            raise RunnerDied(self._death()) from None
        if raw is None:
            if self.process is not None and not self.process.is_alive():
                raise RunnerDied(self._death())
            return None
        event = decode_event(raw)
        if isinstance(event, Done) and self.sent and self.sent[0].id == event.task_id:
            self.sent.popleft()
        return event

    def _death(self) -> str:
        process = self.process
        if process is not None:
            process.join(2.0)
            code = process.exitcode
        else:
            code = None
        self._discard()
        return describe_exit(code)

    def request_cancel(self, task_id: int) -> None:
        if self.cancel_flag is not None:
            self.cancel_flag.value = task_id

    def stop_task(self, patience: float) -> str:
        """SIGTERM (the child turns it into SystemExit), then SIGKILL after ``patience``."""
        process = self.process
        how = "not running"
        if process is not None and process.pid is not None and process.is_alive():
            if self.terminate_flag is not None:
                self.terminate_flag.value = 1
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
            process.join(patience)
            how = "stopped with SIGTERM"
            if process.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGKILL)
                process.join(5.0)
                how = "killed with SIGKILL"
        self._discard()
        return how

    def _discard(self) -> None:
        for conn in (self.conn, self.events):
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.close()
        self.conn = self.events = None
        self.frames = None
        self.gate = self.started_runs = self.skip_through = self.head = None
        if self.sent:
            self.sent.popleft()  # it failed, or was stopped, with its process
            self.lost.extend(self.sent)
            self.sent.clear()
        if self.process is not None:
            if not self.process.is_alive():
                with contextlib.suppress(ValueError):
                    self.process.close()
            self.process = None

    def close(self) -> None:
        """Ask an idle child to exit; kill it if it does not."""
        process, conn = self.process, self.conn
        if process is None:
            return
        if conn is not None:
            with contextlib.suppress(OSError, ValueError):
                conn.send_bytes(encode_command("stop"))
        process.join(2.0)
        self.stop_task(0.5)


class _ThreadRun:
    """One task on a slot's executor thread: its events, its cancel flag, its end."""

    __slots__ = ("cancelled", "ended", "events", "task")

    def __init__(self, task: Task) -> None:
        self.task = task
        self.events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self.cancelled = False
        self.ended = threading.Lock()  # held until the handler has returned
        self.ended.acquire()


class _QueueReporter:
    """The reporter of a handler on a thread: events into its run's queue."""

    def __init__(self, run: _ThreadRun) -> None:
        self.run = run
        self.task_id = run.task.id
        self.saw_cancel = False

    def report(
        self, progress: Progress | None, messages: tuple[Message, ...], link: ActionLink | None
    ) -> bool:
        self.run.events.put(
            Report(task_id=self.task_id, progress=progress, messages=messages, link=link)
        )
        return True

    def attach(self, filename: str, content_type: str, data: bytes) -> bool:
        self.run.events.put(
            Attach(task_id=self.task_id, filename=filename, content_type=content_type, data=data)
        )
        return True

    def cancel_requested(self) -> bool:
        if self.run.cancelled:
            self.saw_cancel = True
        return self.saw_cancel


class ThreadRunner:
    """Runs tasks on an executor thread of the worker process (``--mode thread``).

    The thread is started with the first task and reused for the next ones, fed
    through a queue. A thread cannot be stopped from outside: :meth:`stop_task`
    abandons it (it finishes its handler, then exits; its later events go to a
    queue nobody reads, and its claim is gone) and the next task gets a fresh
    thread.
    """

    def __init__(self, name: str, settings: Settings) -> None:
        self.name = name
        self.settings = settings
        self.thread: threading.Thread | None = None
        self.jobs: queue.SimpleQueue[_ThreadRun | None] | None = None
        self.run: _ThreadRun | None = None
        self.events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self.abandoned = 0
        self.threads_started = 0  # for tests

    def ensure_started(self) -> None:
        return

    def begin(self, task: Task, then: Sequence[Task] = ()) -> None:
        if then:
            raise ValueError("a thread slot is given one task at a time")
        run = _ThreadRun(task)
        self.run, self.events = run, run.events
        if self.jobs is None or self.thread is None or not self.thread.is_alive():
            self.jobs = queue.SimpleQueue()
            self.thread = threading.Thread(
                target=self._serve, args=(self.jobs,), name=f"{self.name}-task", daemon=True
            )
            self.threads_started += 1
            self.thread.start()
        self.jobs.put(run)

    def _serve(self, jobs: queue.SimpleQueue[_ThreadRun | None]) -> None:
        while True:
            run = jobs.get()
            if run is None:
                return
            try:
                self._run(run)
            finally:
                run.ended.release()

    def _run(self, run: _ThreadRun) -> None:
        task, events = run.task, run.events
        reporter = _QueueReporter(run)
        outcome, _ = execute(
            task,
            reporter,
            allowlist=self.settings.handlers,
            max_file_bytes=self.settings.max_file_bytes,
            on_start=lambda timeout: events.put(Started(task_id=task.id, timeout=timeout)),
        )
        events.put(Done(task_id=task.id, outcome=outcome, saw_cancel=reporter.saw_cancel))

    def next_event(self, timeout: float) -> Event | None:
        try:
            return self.events.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None

    def request_cancel(self, task_id: int) -> None:
        run = self.run
        if run is not None:
            run.cancelled = True

    def stop_task(self, patience: float) -> str:
        run, self.run = self.run, None
        if run is not None and not run.ended.acquire(timeout=max(0.0, min(patience, 0.2))):
            # Still in its handler: leave the thread to it (it exits once the handler
            # returns) and give the slot a fresh one for its next task.
            self.abandoned += 1
            self._retire()
            self.events = queue.SimpleQueue()
            return "abandoned (a thread cannot be stopped; it runs on, its result discarded)"
        return "finished"

    def _retire(self) -> None:
        if self.jobs is not None:
            self.jobs.put(None)
        self.jobs = None
        self.thread = None

    def close(self) -> None:
        self.run = None
        self._retire()
