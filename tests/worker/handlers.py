"""Handlers for the runner tests (importable by slot processes as tests.worker.handlers).

Nothing here imports SQLAlchemy: the point of some tests is that a slot process has not.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import resource
import sys
import threading
import time

from tasktable import RunningTask, TaskHandler


class Introspect(TaskHandler):
    """Says what its process holds: pid, parent, threads, open files, modules, limits."""

    def run_task(self, task: RunningTask) -> None:
        files = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                files.append(os.readlink(f"/proc/self/fd/{fd}"))
            except OSError:
                continue
        logging.getLogger("tasktable.tests").info("introspected")  # logging's locks work
        facts = {
            "pid": os.getpid(),
            "ppid": os.getppid(),
            "threads": sorted(t.name for t in threading.enumerate()),
            "os_threads": len(os.listdir("/proc/self/task")),
            "files": files,
            "sqlalchemy": "sqlalchemy" in sys.modules,
            "rlimit_as": resource.getrlimit(resource.RLIMIT_AS)[0],
            "thread_ident": threading.get_ident(),
        }
        task.add_message(json.dumps(facts))


class Exit(TaskHandler):
    def run_task(self, task: RunningTask) -> None:
        os._exit(int(task.args.get("code", 13)))


class Segfault(TaskHandler):
    def run_task(self, task: RunningTask) -> None:
        ctypes.string_at(0)


class Nap(TaskHandler):
    """Sleeps ``args["seconds"]``; declares a timeout, so its runner says Started first."""

    timeout = 600

    def run_task(self, task: RunningTask) -> None:
        time.sleep(float(task.args.get("seconds", 0.1)))


class WaitForCancel(TaskHandler):
    """Returns once the worker asks it to cancel (or after ``args["seconds"]``)."""

    def run_task(self, task: RunningTask) -> None:
        deadline = time.monotonic() + float(task.args.get("seconds", 30))
        while time.monotonic() < deadline:
            if task.cancel_requested:
                task.add_message("saw the cancel")
                return
            time.sleep(0.01)
