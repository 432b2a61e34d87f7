"""Handlers used by the tests (importable by worker subprocesses as tests.support.handlers)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from tasktable import RunningTask, TaskHandler, handler


class Echo(TaskHandler):
    task_name = "Echo"

    def run_task(self, task: RunningTask) -> Any:
        task.add_message(f"args: {task.args}")
        return task.args


class Boom(TaskHandler):
    task_name = "Boom"

    def run_task(self, task: RunningTask) -> None:
        task.add_message("about to fail")
        raise RuntimeError("boom: something broke")


class SoftFail(TaskHandler):
    def run_task(self, task: RunningTask) -> None:
        task.fail("the order was already shipped")


class Sleep(TaskHandler):
    """Sleeps ``args["seconds"]``; appends start/end lines to ``args["ledger"]`` if given."""

    def run_task(self, task: RunningTask) -> None:
        seconds = float(task.args.get("seconds", 0.1))
        ledger = task.args.get("ledger")
        if ledger:
            _append(ledger, f"start {task.id} {time.time():.6f} {os.getpid()}")
        time.sleep(seconds)
        if ledger:
            _append(ledger, f"end {task.id} {time.time():.6f} {os.getpid()}")


class Ledger(TaskHandler):
    """Records one line per run in a ledger table on a separate connection."""

    def run_task(self, task: RunningTask) -> None:
        url = task.args["ledger_url"]
        engine = _ledger_engine(url)
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO ledger (task_id, pid) VALUES (:t, :p)"),
                {"t": task.id, "p": os.getpid()},
            )
        if task.args.get("seconds"):
            time.sleep(float(task.args["seconds"]))


_ENGINES: dict[str, Any] = {}


def _ledger_engine(url: str) -> Any:
    if url not in _ENGINES:
        _ENGINES[url] = create_engine(url, pool_size=10)
    return _ENGINES[url]


def _append(path: str, line: str) -> None:
    with open(path, "a") as fh:
        fh.write(line + "\n")


class Progressive(TaskHandler):
    def run_task(self, task: RunningTask) -> None:
        total = int(task.args.get("total", 3))
        for done in range(1, total + 1):
            task.set_progress(done, total)
        task.set_action_link("Download CSV", "reports/download", {"file": "x.csv"})
        task.attach_file(b"id,status\n1,ok\n", "report.csv")


class AsyncEcho(TaskHandler):
    async def run_task(self, task: RunningTask) -> str:
        await asyncio.sleep(0.01)
        task.add_message("async done")
        return "ok"


@handler(name="Plain function")
def plain_function(task: RunningTask) -> None:
    task.add_message(f"function got {task.args}")


def not_a_handler(task: RunningTask) -> None:  # not decorated: must be refused
    pass


class NotAHandler:
    def run_task(self, task: RunningTask) -> None:
        pass


class WritesFile(TaskHandler):
    def run_task(self, task: RunningTask) -> None:
        Path(task.args["path"]).write_text(str(task.id))
