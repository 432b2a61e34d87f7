"""Handlers of the reliability suite (imported by worker subprocesses).

Each run writes ``start`` and ``end`` lines to a ledger table on its own
connection (never the worker's), so the suite can tell afterwards how often
each task really ran, whatever the task table says. The ledger URL comes from
``RELIABILITY_LEDGER_URL``; writes are retried through database restarts.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import time
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tasktable import Retry, RunningTask, TaskHandler

LEDGER_TABLE = "rel_ledger"
_ENGINES: dict[str, Any] = {}


def ledger_ddl(dialect: str) -> str:
    ident = {
        "sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "postgresql": "BIGSERIAL PRIMARY KEY",
    }.get(dialect, "BIGINT AUTO_INCREMENT PRIMARY KEY")
    return (
        f"CREATE TABLE IF NOT EXISTS {LEDGER_TABLE} (id {ident}, task_id BIGINT NOT NULL, "
        "attempt INTEGER NOT NULL, event VARCHAR(16) NOT NULL, pid INTEGER NOT NULL, "
        "ppid INTEGER NOT NULL, at DOUBLE PRECISION NOT NULL)"
    )


def _engine() -> Any:
    url = os.environ["RELIABILITY_LEDGER_URL"]
    if url not in _ENGINES:
        if url.startswith("sqlite"):
            engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": 60})
        else:  # one connection per slot process, checked before use (the server may restart)
            engine = create_engine(url, pool_size=1, max_overflow=0, pool_pre_ping=True)
        _ENGINES[url] = engine
    return _ENGINES[url]


def _worker_pid() -> int:
    """The pid of the worker running this slot: the parent multiprocessing started the
    slot process from (its OS parent is the worker's fork server on Linux)."""
    parent = multiprocessing.parent_process()
    return parent.pid if parent is not None and parent.pid is not None else os.getppid()


def record(task: RunningTask, event: str) -> None:
    """One ledger line, retried for up to 120 s (the database may be restarting)."""
    deadline = time.monotonic() + 120
    row = {
        "t": task.id,
        "a": task.attempts,
        "e": event,
        "p": os.getpid(),
        "pp": _worker_pid(),
        "at": time.time(),
    }
    while True:
        try:
            with _engine().begin() as conn:
                conn.execute(
                    text(
                        f"INSERT INTO {LEDGER_TABLE} (task_id, attempt, event, pid, ppid, at) "
                        "VALUES (:t, :a, :e, :p, :pp, :at)"
                    ),
                    row,
                )
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class Work(TaskHandler):
    """Sleeps ``args["ms"]`` milliseconds between a start and an end ledger line."""

    task_name = "Work"

    def run_task(self, task: RunningTask) -> None:
        record(task, "start")
        ms = float(task.args.get("ms", 0))
        steps = int(task.args.get("steps", 1))
        for step in range(steps):
            time.sleep(ms / 1000 / steps)
            if steps > 1:
                task.set_progress(step + 1, steps)
        task.add_message(f"done by {os.getpid()} attempt {task.attempts}")
        record(task, "end")


class Hang(TaskHandler):
    """Never returns on its own (a sync handler stuck in a call)."""

    task_name = "Hang"
    timeout = 2.0

    def run_task(self, task: RunningTask) -> None:
        record(task, "start")
        while True:
            time.sleep(3600)


class Poison(TaskHandler):
    """Kills its own process (as a crashing C extension would)."""

    task_name = "Poison"
    max_attempts = 2

    def run_task(self, task: RunningTask) -> None:
        record(task, "start")
        os._exit(13)


class Segfault(TaskHandler):
    task_name = "Segfault"

    def run_task(self, task: RunningTask) -> None:
        record(task, "start")
        ctypes.string_at(0)


class Hog(TaskHandler):
    """Allocates ``args["mb"]`` megabytes at once (past TASKTABLE_MAX_MEMORY)."""

    task_name = "Hog"

    def run_task(self, task: RunningTask) -> None:
        record(task, "start")
        blob = bytearray(int(task.args.get("mb", 1024)) * 1024 * 1024)
        task.add_message(f"allocated {len(blob)} bytes")


class Cooperative(TaskHandler):
    """Works in small steps and stops when asked to cancel."""

    task_name = "Cooperative"

    def run_task(self, task: RunningTask) -> None:
        record(task, "start")
        deadline = time.monotonic() + float(task.args.get("seconds", 60))
        while time.monotonic() < deadline:
            if task.cancel_requested:
                task.add_message("stopping: cancel requested")
                record(task, "cancelled")
                return
            time.sleep(0.1)
        record(task, "end")


class Stubborn(TaskHandler):
    """Ignores cancel requests."""

    task_name = "Stubborn"

    def run_task(self, task: RunningTask) -> None:
        record(task, "start")
        time.sleep(float(task.args.get("seconds", 60)))
        record(task, "end")


class NeverRerun(TaskHandler):
    """Work that must not repeat after a lost worker."""

    task_name = "NeverRerun"
    rerun_on_loss = False

    def run_task(self, task: RunningTask) -> None:
        record(task, "start")
        time.sleep(float(task.args.get("seconds", 30)))
        record(task, "end")


class Flaky(TaskHandler):
    """Fails until its third attempt."""

    task_name = "Flaky"
    max_attempts = 3

    def run_task(self, task: RunningTask) -> None:
        record(task, "start")
        if task.attempts < 3:
            raise RuntimeError(f"flaky failure on attempt {task.attempts}")
        task.add_message(f"done by {os.getpid()} attempt {task.attempts}")


class RetryOnce(TaskHandler):
    """Asks for one retry in 1 s, explicitly."""

    task_name = "RetryOnce"
    max_attempts = 2

    def run_task(self, task: RunningTask) -> None:
        record(task, "start")
        if task.attempts == 1:
            raise Retry(in_="1s", reason="the remote side said later")
        task.add_message(f"done by {os.getpid()} attempt {task.attempts}")
