"""The operations layer: what the REST API and the dashboard do, over one TaskTable.

Both are clients of :class:`Operations` and never of the storage directly:
list with filters, sort and keyset paging; show; enqueue; change a pending
task; delete, retry and cancel one task or many (by ids or by a filter, bounded);
files; stats with throughput buckets, oldest pending age and live workers.
Every method raises a :class:`~tasktable.errors.TaskTableError` with one
sentence for anything the caller got wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from .app import TaskTable, parse_sort
from .core.status import TaskStatus
from .core.task import Task, TaskFile
from .errors import HandlerNotAllowed, InvalidInput, InvalidTransition, TaskNotFound
from .storage.base import SORT_FIELDS, Page, Stats, TaskFilter, WorkerInfo

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
#: Bulk actions by filter touch at most this many tasks per call (by ids: this many ids).
BULK_LIMIT = 1000
MAX_BUCKETS = 240
PATCHABLE = ("name", "priority", "run_at", "queue")

BulkAction = Literal["retry", "cancel", "delete"]


class InvalidCursor(InvalidInput):
    """A page cursor that this sort and filter did not produce."""

    code = "invalid_cursor"


class FileNotFound(TaskNotFound):
    """The task exists but has no file of that name."""

    def __init__(self, task_id: int, filename: str) -> None:
        Exception.__init__(self, f"Task {task_id} has no file named {filename!r}.")
        self.task_id = task_id


@dataclass(frozen=True, kw_only=True)
class TaskQuery:
    """Which tasks: the filters of the grid and of ``GET /tasks``. Empty matches all."""

    statuses: tuple[str, ...] = ()
    name: str | None = None  # contains, case-insensitive, matched literally
    handler: str | None = None  # exact path
    queues: tuple[str, ...] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None
    finished_after: datetime | None = None
    finished_before: datetime | None = None
    search: str | None = None  # name, handler or args contain this text


@dataclass(frozen=True, kw_only=True)
class BulkResult:
    action: BulkAction
    ids: list[int]  # the tasks acted on
    stop_requested: list[int] = field(default_factory=list)  # running tasks asked to stop
    limit: int = BULK_LIMIT
    limit_reached: bool = False  # more tasks may match: call again

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "ids": self.ids,
            "count": len(self.ids),
            "stop_requested": self.stop_requested,
            "limit": self.limit,
            "limit_reached": self.limit_reached,
        }


@dataclass(frozen=True, kw_only=True)
class Overview:
    """Counts, throughput per bucket, oldest pending age and live workers."""

    stats: Stats
    now: datetime
    bucket_seconds: int
    throughput: list[tuple[datetime, int, int]]
    workers: list[tuple[WorkerInfo, bool]]  # each worker and whether it is alive

    def to_json(self) -> dict[str, Any]:
        def ts(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        s = self.stats
        return {
            "by_status": s.by_status,
            "by_queue": s.by_queue,
            "total": s.total,
            "oldest_pending_age_seconds": s.oldest_pending_age,
            "finished_last_minute": s.finished_last_minute,
            "finished_last_hour": s.finished_last_hour,
            "now": ts(self.now),
            "bucket_seconds": self.bucket_seconds,
            "throughput": [
                {"start": ts(start), "success": ok, "error": err}
                for start, ok, err in self.throughput
            ],
            "workers_alive": sum(1 for _, alive in self.workers if alive),
            "workers": [
                {
                    "id": w.id,
                    "hostname": w.hostname,
                    "pid": w.pid,
                    "slots": w.slots,
                    "queues": list(w.queues),
                    "started_at": ts(w.started_at),
                    "heartbeat_at": ts(w.heartbeat_at),
                    "alive": alive,
                }
                for w, alive in self.workers
            ],
        }


class Operations:
    """The operations of the API and the dashboard over ``table``.

    ``remote=True`` (the API and dashboard) makes enqueue refuse every handler
    until ``TASKTABLE_HANDLERS`` is set: a path that arrives over the network
    never decides what gets imported.
    """

    def __init__(self, table: TaskTable, *, remote: bool = True) -> None:
        self.table = table
        self.remote = remote

    # -- read -------------------------------------------------------------------
    def filter(self, query: TaskQuery, ids: Sequence[int] | None = None) -> TaskFilter:
        return self.table.filter(
            ids=ids,
            status=list(query.statuses) or None,
            name=query.name,
            handler=query.handler,
            queue=list(query.queues) or None,
            created_after=query.created_after,
            created_before=query.created_before,
            finished_after=query.finished_after,
            finished_before=query.finished_before,
            search=query.search,
        )

    def list_tasks(
        self,
        query: TaskQuery | None = None,
        *,
        sort: str = "-id",
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
    ) -> Page:
        """One keyset page; pass ``page.next_cursor`` back for the next one."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE_SIZE}.")
        order = parse_sort(sort)
        if order.field not in SORT_FIELDS:
            raise InvalidInput(
                f"Cannot sort by {order.field!r}; sort by one of: {', '.join(SORT_FIELDS)}."
            )
        flt = self.filter(query or TaskQuery())
        try:
            return self.table.storage.list_tasks(flt, order, limit, cursor)
        except InvalidInput as exc:  # sort and filter are checked: only the cursor is left
            if cursor is None:
                raise
            raise InvalidCursor(str(exc)) from None

    def count(self, query: TaskQuery | None = None) -> int:
        return self.table.storage.count(self.filter(query or TaskQuery()))

    def status_counts(self, query: TaskQuery | None = None, *, cap: int = 10_000) -> dict[str, int]:
        """Tasks per status matching ``query`` (its statuses ignored), each counted up
        to ``cap + 1`` only: as fast on a million rows as on a thousand (the dashboard)."""
        from .storage.counts import capped_counts

        return capped_counts(self.table.storage, self.filter(query or TaskQuery()), cap)

    def get_many(self, ids: Sequence[int]) -> list[Task]:
        """The tasks with these ids that exist (without their files), in one query."""
        if len(ids) > MAX_PAGE_SIZE:
            raise InvalidInput(f"Give at most {MAX_PAGE_SIZE} ids at once.")
        if not ids:
            return []
        flt = self.filter(TaskQuery(), ids)
        return self.table.storage.list_tasks(flt, parse_sort("id"), len(ids), None).tasks

    def show(self, task_id: int) -> Task:
        return self.table.get(task_id)

    def files(self, task_id: int) -> tuple[TaskFile, ...]:
        return self.show(task_id).files

    def read_file(self, task_id: int, filename: str) -> tuple[TaskFile, bytes]:
        task = self.show(task_id)
        if filename not in {f.filename for f in task.files}:
            raise FileNotFound(task_id, filename)
        try:
            return self.table.read_file(task_id, filename)
        except InvalidInput:  # deleted in between
            raise FileNotFound(task_id, filename) from None

    # -- write ------------------------------------------------------------------
    def enqueue(
        self,
        handler: str,
        args: Any = None,
        *,
        name: str | None = None,
        queue: str = "default",
        priority: int = 0,
        delay: float | None = None,
        run_at: datetime | str | None = None,
        max_attempts: int | None = None,
        timeout: float | None = None,
        unique_key: str | None = None,
    ) -> Task:
        """Add a task. The handler path is checked against ``TASKTABLE_HANDLERS`` on
        its text first; only an allowed path is ever imported (to verify it)."""
        allowlist = self.table.settings.handlers
        if self.remote and not allowlist.is_set:
            raise HandlerNotAllowed(
                "Enqueueing over the network is off until TASKTABLE_HANDLERS lists the "
                "handlers it may use (e.g. TASKTABLE_HANDLERS='myapp.tasks:*'); "
                "set it where the server runs and restart it."
            )
        path = allowlist.check(handler)  # text only; raises before any import
        return self.table.enqueue(
            path,
            args,
            name=name,
            queue=queue,
            priority=priority,
            delay=delay,
            run_at=run_at,
            max_attempts=max_attempts,
            timeout=timeout,
            unique_key=unique_key,
        )

    def patch(self, task_id: int, changes: dict[str, Any]) -> Task:
        """Change the name, priority, run_at or queue of a pending task."""
        unknown = set(changes) - set(PATCHABLE)
        if unknown:
            raise InvalidInput(
                f"Cannot change {', '.join(sorted(unknown))}; "
                f"only {', '.join(PATCHABLE)} of a pending task."
            )
        if not changes:
            raise InvalidInput(f"Nothing to change; give one of {', '.join(PATCHABLE)}.")
        return self.table.update(task_id, **changes)

    def delete(self, task_id: int) -> None:
        if not self.table.delete(task_id):
            raise TaskNotFound(task_id)

    def retry(self, task_id: int) -> Task:
        if not self.table.retry(task_id):
            task = self.show(task_id)
            if task.status in (TaskStatus.ERROR, TaskStatus.CANCELLED):
                raise InvalidTransition(
                    f"Task {task_id} cannot run again while another live task holds its "
                    f"unique key {task.unique_key!r}."
                )
            raise InvalidTransition(
                f"Task {task_id} is {task.status.value}; only error or cancelled tasks "
                "can be retried."
            )
        return self.show(task_id)

    def cancel(self, task_id: int) -> Task:
        """Cancel a pending task, or ask a running one to stop (``cancel_requested``)."""
        cancelled, requested = self.table.cancel(task_id)
        if not cancelled and not requested:
            task = self.show(task_id)
            raise InvalidTransition(
                f"Task {task_id} is {task.status.value}; only pending or running tasks "
                "can be cancelled."
            )
        return self.show(task_id)

    def bulk(
        self,
        action: BulkAction,
        *,
        ids: Sequence[int] | None = None,
        query: TaskQuery | None = None,
        limit: int = BULK_LIMIT,
    ) -> BulkResult:
        """Retry, cancel or delete the tasks with ``ids``, or up to ``limit`` tasks
        matching ``query`` (lowest ids first). Tasks whose status does not allow
        the action are skipped."""
        if (ids is None) == (query is None):
            raise InvalidInput("Give either ids or a filter, not both.")
        if not 1 <= limit <= BULK_LIMIT:
            raise InvalidInput(f"limit must be between 1 and {BULK_LIMIT}.")
        if ids is not None and len(ids) > BULK_LIMIT:
            raise InvalidInput(f"Give at most {BULK_LIMIT} ids at once.")
        flt = (
            self.filter(TaskQuery(), ids) if ids is not None else self.filter(query or TaskQuery())
        )
        bound = None if ids is not None else limit
        storage = self.table.storage
        stopped: list[int] = []
        if action == "retry":
            done = storage.retry(flt, bound)
        elif action == "cancel":
            done, stopped = storage.cancel(flt, bound)
        elif action == "delete":
            done = storage.delete(flt, bound)
        else:
            raise InvalidInput(f"Unknown bulk action {action!r}; use retry, cancel or delete.")
        touched = len(done) + len(stopped)
        return BulkResult(
            action=action,
            ids=done,
            stop_requested=stopped,
            limit=limit if ids is None else len(ids),
            limit_reached=ids is None and touched >= limit,
        )

    # -- overview ---------------------------------------------------------------
    def stats(self, *, bucket_seconds: int = 60, buckets: int = 60) -> Overview:
        """Counts by status and queue, finished tasks per time bucket (oldest first),
        oldest due pending age, and the workers with whether each is alive."""
        from .storage.throughput import throughput

        if not 1 <= buckets <= MAX_BUCKETS:
            raise InvalidInput(f"buckets must be between 1 and {MAX_BUCKETS}.")
        if not 1 <= bucket_seconds <= 86400:
            raise InvalidInput("bucket_seconds must be between 1 and 86400.")
        stats = self.table.stats()
        series = throughput(self.table.storage, bucket_seconds, buckets)
        dead_after: timedelta = self.table.settings.dead_after
        workers = [
            (w, w.heartbeat_at is not None and series.now - w.heartbeat_at <= dead_after)
            for w in stats.workers
        ]
        return Overview(
            stats=stats,
            now=series.now,
            bucket_seconds=bucket_seconds,
            throughput=[(b.start, b.success, b.error) for b in series.buckets],
            workers=workers,
        )

    def database_ok(self) -> bool:
        """True when the database answers and has the schema (for health checks)."""
        try:
            self.table.storage.server_now()
        except Exception:  # health reports any failure as "down", never raises
            return False
        return True
