"""Helpers over a tasktable database: load tasks, wait for them, read their times back."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from tasktable import TaskTable
from tasktable.settings import Settings
from tasktable.storage.schema import task_table, worker_table

from .databases import analyze
from .handlers import NOOP

T = task_table.c


def open_table(url: str) -> TaskTable:
    """A migrated TaskTable on ``url`` (no allowlist, logs in a temporary folder)."""
    table = TaskTable(url, settings=Settings(log_file="/tmp/tt_bench_logs/background_task.log"))
    table.migrate()
    return table


def load(table: TaskTable, count: int, handler: str = NOOP, batch: int = 5_000) -> None:
    """``count`` pending tasks, inserted in batches, then fresh planner statistics."""
    for start in range(0, count, batch):
        table.enqueue_many([{"handler": handler}] * min(batch, count - start))
    analyze(table.url)


@dataclass(frozen=True)
class Times:
    created: list[datetime]
    executed: list[datetime]
    finished: list[datetime]

    @property
    def first_start(self) -> float:
        return min(self.executed).timestamp()

    @property
    def last_finish(self) -> float:
        return max(self.finished).timestamp()

    def latencies_ms(self) -> list[float]:
        return [
            (e - c).total_seconds() * 1000 for c, e in zip(self.created, self.executed, strict=True)
        ]


def finished_times(table: TaskTable, expected: int, after_id: int = 0) -> Times:
    """The times of tasks with id > ``after_id``; raises unless each ran exactly once, successfully."""
    stmt = select(T.status, T.attempts, T.created_at, T.executed_at, T.finished_at).where(
        T.id > after_id
    )
    with table.storage.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    bad = Counter(
        f"{r.status}/{r.attempts}" for r in rows if r.status != "success" or r.attempts != 1
    )
    if len(rows) != expected or bad:
        raise RuntimeError(
            f"exactly-once check failed: {len(rows)} rows (expected {expected}); "
            f"not success at attempt 1 (status/attempts: count): {dict(bad)}"
        )
    return Times(
        created=[r.created_at for r in rows],
        executed=[r.executed_at for r in rows],
        finished=[r.finished_at for r in rows],
    )


def count_success(table: TaskTable, after_id: int = 0) -> int:
    stmt = select(func.count()).where(T.status == "success", T.id > after_id)
    with table.storage.engine.connect() as conn:
        return int(conn.execute(stmt).scalar() or 0)


def wait_success(table: TaskTable, count: int, timeout: float, after_id: int = 0) -> None:
    deadline = time.monotonic() + timeout
    while count_success(table, after_id) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{count} tasks not done after {timeout:.0f}s")
        time.sleep(0.05)


def wait_registered(table: TaskTable, workers: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with table.storage.engine.connect() as conn:
            found = int(conn.execute(select(func.count()).select_from(worker_table)).scalar() or 0)
        if found >= workers:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"worker not registered after {timeout:.0f}s")
        time.sleep(0.05)


def warm_up(table: TaskTable, timeout: float = 60.0) -> int:
    """One task through an idle worker (imports done, connections open); returns its id."""
    task = table.enqueue(NOOP)
    wait_success(table, 1, timeout, after_id=task.id - 1)
    return task.id
