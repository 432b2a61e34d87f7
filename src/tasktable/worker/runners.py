"""Where a slot runs its handler: a long-lived child process (default) or a thread.

A runner starts a task, yields its events, and can stop it. The slot around
it (``slots.py``) is the same for both, so timeouts, cancellation, crashes
and shutdown are handled in one place.

- :class:`ProcessRunner` keeps one spawned child process per slot, reused
  task after task. Stopping a task really stops it (SIGTERM, then SIGKILL),
  and a crash (``os._exit``, a segfault, the memory cap) takes only that
  child down; the slot starts a fresh one.
- :class:`ThreadRunner` runs each task on a thread of the worker process:
  cheaper, for I/O-bound handlers, but a thread cannot be killed. A timeout
  or a cancel there only discards the result (the thread runs on until its
  handler returns), and a handler that crashes the process takes the worker
  and every slot with it.
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
from collections.abc import Iterator
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Protocol

from ..core.task import ActionLink, Message, Progress, Task
from ..settings import Settings
from .executor import execute
from .protocol import (
    Attach,
    Done,
    Event,
    Report,
    Started,
    decode_event,
    encode_command,
    task_to_json,
)

log = logging.getLogger("tasktable.worker")

START_TIMEOUT = 60.0  # seconds a new slot process may take to import and say ready
_MAIN_LOCK = threading.Lock()


@contextlib.contextmanager
def _cli_main_hidden() -> Iterator[None]:
    """While spawning: when ``__main__`` is the ``tasktable`` console script, hide its
    path so the child does not run it again (spawn re-imports a main script; this one
    only imports the CLI, and SQLAlchemy with it: time and memory in every slot).
    Any other main script (a user's own, which may define handlers) is left alone.
    Slots start in parallel: the check and the spawn happen under one lock."""
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


class RunnerDied(Exception):
    """The runner's process ended while running a task (or could not start).

    Its text says how, e.g. "exit code 13" or "killed by signal SIGSEGV".
    """


class Runner(Protocol):
    def ensure_started(self) -> None:
        """Make the runner ready for a task; raises :class:`RunnerDied` if it cannot."""

    def begin(self, task: Task) -> None:
        """Start running ``task``; raises :class:`RunnerDied` if the runner is gone."""

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
    """One child process for a slot, started with the ``spawn`` method and reused."""

    def __init__(self, name: str, settings: Settings, *, verbose: bool = False) -> None:
        self.name = name
        self.ctx = multiprocessing.get_context("spawn")
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
        self.conn: Connection | None = None
        self.cancel_flag: Any = None
        self.terminate_flag: Any = None
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

        parent, child = self.ctx.Pipe(duplex=True)
        self.cancel_flag = self.ctx.RawValue("q", 0)
        self.terminate_flag = self.ctx.RawValue("b", 0)
        process = self.ctx.Process(
            target=child_main,
            args=(child, self.config, self.cancel_flag, self.terminate_flag),
            name=self.name,
            daemon=False,  # a daemonic process may not start processes; handlers may
        )
        with _cli_main_hidden():
            process.start()
        child.close()
        self.process, self.conn = process, parent
        self.started += 1
        if not parent.poll(START_TIMEOUT):
            self.stop_task(0.5)
            raise RunnerDied(f"the slot process did not start within {START_TIMEOUT:.0f}s")
        try:
            hello = parent.recv_bytes()
        except (EOFError, OSError):
            process.join(1.0)
            code = process.exitcode
            self._discard()
            raise RunnerDied(f"the slot process failed to start ({describe_exit(code)})") from None
        if hello != b'{"op":"ready"}':
            self.stop_task(0.5)
            raise RunnerDied(f"the slot process said {hello[:100]!r} instead of ready")
        log.debug("%s: process %s ready", self.name, process.pid)

    def begin(self, task: Task) -> None:
        if self.conn is None:
            raise RunnerDied("not running")
        self.cancel_flag.value = 0
        try:
            self.conn.send_bytes(encode_command("run", task=task_to_json(task)))
        except (OSError, ValueError) as exc:
            raise RunnerDied(self._death()) from exc

    def next_event(self, timeout: float) -> Event | None:
        conn = self.conn
        if conn is None:
            raise RunnerDied("not running")
        try:
            if not conn.poll(timeout):
                if self.process is not None and not self.process.is_alive():
                    raise RunnerDied(self._death())
                return None
            raw = conn.recv_bytes()
        except (EOFError, OSError):
            raise RunnerDied(self._death()) from None
        return decode_event(raw)

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
        if self.conn is not None:
            with contextlib.suppress(OSError):
                self.conn.close()
        self.conn = None
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


class _QueueReporter:
    """The reporter of a handler on a thread: events into the slot's queue."""

    def __init__(self, events: queue.Queue[Event], task_id: int, cancel: threading.Event) -> None:
        self.events = events
        self.task_id = task_id
        self.cancel = cancel
        self.saw_cancel = False

    def report(
        self, progress: Progress | None, messages: tuple[Message, ...], link: ActionLink | None
    ) -> bool:
        self.events.put(
            Report(task_id=self.task_id, progress=progress, messages=messages, link=link)
        )
        return True

    def attach(self, filename: str, content_type: str, data: bytes) -> bool:
        self.events.put(
            Attach(task_id=self.task_id, filename=filename, content_type=content_type, data=data)
        )
        return True

    def cancel_requested(self) -> bool:
        if self.cancel.is_set():
            self.saw_cancel = True
        return self.saw_cancel


class ThreadRunner:
    """Runs each task on a new thread of the worker process (``--mode thread``).

    A thread cannot be stopped from outside: :meth:`stop_task` abandons it
    (its later events go to a queue nobody reads, and its claim is gone).
    """

    def __init__(self, name: str, settings: Settings) -> None:
        self.name = name
        self.settings = settings
        self.events: queue.Queue[Event] = queue.Queue()
        self.cancel = threading.Event()
        self.thread: threading.Thread | None = None
        self.abandoned = 0

    def ensure_started(self) -> None:
        return

    def begin(self, task: Task) -> None:
        self.events = queue.Queue()
        self.cancel = threading.Event()
        events, cancel = self.events, self.cancel
        self.thread = threading.Thread(
            target=self._run, args=(task, events, cancel), name=f"{self.name}-task", daemon=True
        )
        self.thread.start()

    def _run(self, task: Task, events: queue.Queue[Event], cancel: threading.Event) -> None:
        reporter = _QueueReporter(events, task.id, cancel)
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
        self.cancel.set()

    def stop_task(self, patience: float) -> str:
        thread = self.thread
        if thread is not None:
            thread.join(min(patience, 0.2))
            if thread.is_alive():
                self.abandoned += 1
                self.thread = None
                self.events = queue.Queue()
                return "abandoned (a thread cannot be stopped; it runs on, its result discarded)"
        self.thread = None
        return "finished"

    def close(self) -> None:
        self.thread = None
