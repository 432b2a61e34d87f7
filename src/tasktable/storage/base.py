"""The storage seam: one small typed protocol of domain operations.

Everything above this (the repository, the worker, the operations used by the
CLI, API and dashboard) talks to a :class:`Storage`; only ``storage/`` imports
SQLAlchemy or a database driver. Each operation states its atomicity.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from ..core.status import TaskStatus
from ..core.task import ActionLink, Message, NewTask, Progress, Task, TaskFile

SORT_FIELDS = ("id", "created_at", "run_at", "priority", "name", "status", "queue", "handler")


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do; the worker picks its strategy from these, not from types."""

    skip_locked: bool
    update_returning: bool
    listen_notify: bool
    concurrent_writers: bool  # False on SQLite: one writer at a time per file
    same_host_wakeup: bool = False  # SQLite: another's commit is seen (data_version)


@dataclass(frozen=True, kw_only=True)
class TaskFilter:
    """Which tasks a list, count or bulk action concerns. Empty means all."""

    ids: tuple[int, ...] | None = None
    statuses: tuple[TaskStatus, ...] = ()
    name: str | None = None  # case-insensitive substring, matched literally
    handler: str | None = None  # exact handler path
    queues: tuple[str, ...] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None
    finished_after: datetime | None = None
    finished_before: datetime | None = None
    search: str | None = None  # substring of name, handler or args


@dataclass(frozen=True, kw_only=True)
class Sort:
    field: str = "id"
    descending: bool = True


@dataclass(frozen=True, kw_only=True)
class Page:
    tasks: list[Task]
    next_cursor: str | None


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What running a task came to; the completer persists it with one fenced write.

    ``status`` is ``success``, ``error``, or ``pending`` for a retry at ``run_at``.
    """

    status: TaskStatus
    messages: tuple[Message, ...]
    error: str | None = None
    progress: Progress | None = None
    action_link: ActionLink | None = None
    run_at: datetime | None = None
    charge_attempt: bool = True


@dataclass(frozen=True, kw_only=True)
class WorkerInfo:
    id: str
    hostname: str
    pid: int
    slots: int
    queues: tuple[str, ...]
    started_at: datetime | None = None
    heartbeat_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class Stats:
    by_status: dict[str, int]
    by_queue: dict[str, dict[str, int]]
    total: int
    oldest_pending_age: float | None  # seconds, by the database clock
    finished_last_minute: int
    finished_last_hour: int
    throughput: list[tuple[datetime, int, int]] = field(default_factory=list)
    workers: list[WorkerInfo] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "by_status": self.by_status,
            "by_queue": self.by_queue,
            "total": self.total,
            "oldest_pending_age_seconds": self.oldest_pending_age,
            "finished_last_minute": self.finished_last_minute,
            "finished_last_hour": self.finished_last_hour,
            "throughput": [
                {"time": t.isoformat(), "success": s, "error": e} for t, s, e in self.throughput
            ],
            "workers": [
                {
                    "id": w.id,
                    "hostname": w.hostname,
                    "pid": w.pid,
                    "slots": w.slots,
                    "queues": list(w.queues),
                    "started_at": w.started_at.isoformat() if w.started_at else None,
                    "heartbeat_at": w.heartbeat_at.isoformat() if w.heartbeat_at else None,
                }
                for w in self.workers
            ],
        }


CleanStatus = Literal["success", "error", "cancelled"]


class Storage(Protocol):
    """Domain operations on the task table. Implemented by :class:`SQLStorage`."""

    dialect_name: str
    capabilities: Capabilities

    # -- schema ---------------------------------------------------------------
    def migrate(self) -> list[int]:
        """Apply missing migrations (idempotent, serialized across processes)."""

    def check_schema(self) -> None:
        """Raise :class:`SchemaMissing` unless the schema is at this code's version."""

    # -- repository -------------------------------------------------------------
    def insert(self, tasks: Sequence[NewTask], *, connection: Any = None) -> list[Task]:
        """Insert tasks in one transaction; a live task with the same unique key is
        returned instead of a new one. All or nothing."""

    def get(self, task_id: int) -> Task:
        """The task with its files listed; raises :class:`TaskNotFound`."""

    def list_tasks(self, flt: TaskFilter, sort: Sort, limit: int, cursor: str | None) -> Page:
        """One keyset page."""

    def count(self, flt: TaskFilter) -> int: ...

    def update_pending(self, task_id: int, changes: dict[str, Any]) -> Task:
        """Change editable fields of a pending task: one conditional write."""

    def delete(self, flt: TaskFilter, limit: int | None = None) -> list[int]:
        """Delete matching tasks and their files in one transaction."""

    def retry(self, flt: TaskFilter, limit: int | None = None) -> list[int]:
        """error/cancelled -> pending, each a conditional write; returns moved ids."""

    def cancel(self, flt: TaskFilter, limit: int | None = None) -> tuple[list[int], list[int]]:
        """pending -> cancelled; running tasks get cancel_requested.
        Returns (cancelled ids, requested ids)."""

    def clean(
        self, older_than: float, statuses: Sequence[TaskStatus], batch_size: int
    ) -> list[int]:
        """Delete up to ``batch_size`` finished tasks (and files) finished more than
        ``older_than`` seconds ago by the database clock; one transaction."""

    def count_cleanable(self, older_than: float, statuses: Sequence[TaskStatus]) -> int: ...

    def stats(self) -> Stats: ...

    def read_file(self, task_id: int, filename: str) -> tuple[TaskFile, bytes]: ...

    # -- worker -----------------------------------------------------------------
    def register_worker(self, info: WorkerInfo) -> None: ...

    def heartbeat(self, worker_id: str, task_ids: Sequence[int] | None = None) -> bool:
        """Stamp the worker and its running tasks (only ``task_ids`` when given: the
        runs it still holds); False when the worker row is gone (it was declared
        dead and must not claim under this id again). One transaction."""

    def cancel_requests(self, task_ids: Sequence[int]) -> list[int]:
        """The ids among these running tasks that someone asked to cancel."""

    def deregister_worker(self, worker_id: str) -> None: ...

    def claim(
        self,
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        *,
        alive_within: float | None = None,
    ) -> list[Task]:
        """Atomically move up to ``limit`` due pending tasks to running for this
        worker (priority, then id), stamping worker, a fresh claim token and
        attempts + 1. Each task goes to exactly one claimer. With
        ``alive_within``, claims nothing unless the worker's row exists with a
        heartbeat at most that many seconds old (a paused worker never claims
        under an id that was, or is about to be, declared dead)."""

    def finish(self, task: Task, outcome: Outcome) -> bool:
        """Persist an outcome, conditional on the claim token; False = lease lost."""

    def finish_many(self, items: Sequence[tuple[Task, Outcome]]) -> list[bool]:
        """Persist several outcomes in one transaction, each conditional on its own
        claim token; per item, False = lease lost. All or nothing."""

    def finish_and_claim(
        self,
        items: Sequence[tuple[Task, Outcome]],
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        *,
        alive_within: float | None = None,
    ) -> tuple[list[bool], list[Task]]:
        """:meth:`finish_many` then :meth:`claim`, all or nothing, in as few round
        trips as the database allows (the worker's steady state: see ``hot.py``)."""

    def report(
        self,
        task: Task,
        progress: Progress | None,
        messages: Sequence[Message],
        action_link: ActionLink | None,
    ) -> bool:
        """Live progress, fenced by the claim token; False = lease lost."""

    def attach_file(self, task: Task, filename: str, content_type: str, data: bytes) -> bool:
        """Store a file for the task, fenced by the claim token."""

    def release(self, task: Task, message: Message) -> bool:
        """running -> pending without charging the attempt (shutdown), fenced."""

    def rescue(self, dead_after: float, max_lost: int) -> list[int]:
        """Return tasks of dead workers to pending, or end them ``error``."""

    def periodic_ticks(self) -> dict[str, datetime]:
        """The last tick enqueued of each periodic task, by name."""

    def take_tick(
        self, name: str, tick: datetime, task: NewTask | None, *, enqueue_if_new: bool = True
    ) -> tuple[bool, Task | None]:
        """Advance periodic ``name`` to ``tick`` if it is behind, inserting ``task``
        in the same transaction; exactly one caller wins each tick. A name seen
        for the first time is recorded, and its task inserted only when
        ``enqueue_if_new``. Returns (won, the task inserted)."""

    def listen(
        self,
        on_wake: Callable[[str | None], None],
        stop: threading.Event,
        interrupt: int | None = None,
    ) -> None:
        """Call ``on_wake(queue or None)`` whenever tasks may have become due, until
        ``stop``; raises when its connection is lost. Only where ``capabilities``
        say so (``listen_notify`` or ``same_host_wakeup``); see ``wakeup.py``.
        ``interrupt``: a descriptor that becomes readable when ``stop`` is set, so
        that a blocking wait ends at once."""

    def server_now(self) -> datetime:
        """The database's clock (also a cheap "is it reachable" probe)."""

    def dispose(self) -> None: ...
