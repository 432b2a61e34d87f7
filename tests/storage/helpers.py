"""Helpers for the storage contract suite: worker-side moves and fabricated times.

Times are fabricated with an UPDATE relative to the database's own clock, the
clock every lease and retention decision is made by.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import func, select, update

from tasktable import TaskTable
from tasktable.core.status import TaskStatus
from tasktable.core.task import Message, Task
from tasktable.storage.base import Outcome, WorkerInfo
from tasktable.storage.schema import file_table, task_table, worker_table
from tasktable.storage.types import utcnow

ECHO = "tests.support.handlers:Echo"
BOOM = "tests.support.handlers:Boom"
T = task_table.c


def register(table: TaskTable, worker_id: str | None = None) -> str:
    worker_id = worker_id or f"w-{secrets.token_hex(4)}"
    table.storage.register_worker(
        WorkerInfo(id=worker_id, hostname="test-host", pid=1, slots=5, queues=())
    )
    return worker_id


def claim_all(table: TaskTable, worker_id: str, limit: int = 100) -> list[Task]:
    return table.storage.claim(worker_id, (), limit)


def claim_one(table: TaskTable, worker_id: str) -> Task:
    [task] = table.storage.claim(worker_id, (), 1)
    return task


def finish(table: TaskTable, task: Task, status: TaskStatus, error: str | None = None) -> None:
    outcome = Outcome(status=status, messages=(Message(text=f"ended {status.value}"),), error=error)
    assert table.storage.finish(task, outcome)


def make_status(table: TaskTable, status: TaskStatus, **options: Any) -> Task:
    """Enqueue a task and walk it to ``status`` through the real moves.

    A task that must be claimed gets the top priority, so that it is claimed first.
    """
    if status in (TaskStatus.PENDING, TaskStatus.CANCELLED):
        task = table.enqueue(ECHO, {"for": status.value}, **options)
        if status is TaskStatus.CANCELLED:
            table.cancel(task.id)
        return table.get(task.id)
    task = table.enqueue(ECHO, {"for": status.value}, **{"priority": 100, **options})
    worker = register(table)
    claimed = table.storage.claim(worker, (), 1)
    assert [t.id for t in claimed] == [task.id], "another task was due first"
    if status is not TaskStatus.RUNNING:
        finish(table, claimed[0], status, error="Traceback: boom" if status.is_final else None)
    return table.get(task.id)


def shift(table: TaskTable, task_ids: list[int] | int, **seconds_ago: float | None) -> None:
    """Set time columns of tasks to ``now - seconds`` by the database clock (None: NULL)."""
    ids = [task_ids] if isinstance(task_ids, int) else task_ids
    values = {k: (None if v is None else utcnow(-v)) for k, v in seconds_ago.items()}
    with table.storage.engine.begin() as conn:
        conn.execute(update(task_table).where(T.id.in_(ids)).values(values))


def shift_worker(table: TaskTable, worker_id: str, seconds_ago: float) -> None:
    with table.storage.engine.begin() as conn:
        conn.execute(
            update(worker_table)
            .where(worker_table.c.id == worker_id)
            .values(heartbeat_at=utcnow(-seconds_ago))
        )


def column(table: TaskTable, task_id: int, name: str) -> Any:
    """A raw column, including those the Task value does not show (lost_count, active_key)."""
    with table.storage.engine.connect() as conn:
        return conn.execute(select(T[name]).where(T.id == task_id)).scalar_one()


def row_count(table: TaskTable, which: Any = task_table) -> int:
    with table.storage.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(which)).scalar_one())


def file_rows(table: TaskTable) -> int:
    return row_count(table, file_table)


def snapshot(table: TaskTable) -> list[dict[str, Any]]:
    """Every task row and file row as stored, to prove an operation changed nothing."""
    with table.storage.engine.connect() as conn:
        tasks = [dict(r) for r in conn.execute(select(task_table).order_by(T.id)).mappings()]
        files = [
            dict(r) for r in conn.execute(select(file_table).order_by(file_table.c.id)).mappings()
        ]
    return tasks + files
