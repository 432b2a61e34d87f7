"""A tasktable row as a Django ``TaskResult``.

| tasktable status | ``TaskResultStatus`` |
|---|---|
| pending (also a retry waiting for its back-off) | READY |
| running | RUNNING |
| success | SUCCESSFUL |
| error, cancelled | FAILED |

``enqueued_at`` is the row's ``created_at``; ``started_at`` and
``last_attempted_at`` its ``executed_at`` (tasktable keeps the latest start);
``worker_ids`` has one entry per attempt, so ``attempts`` and
``TaskContext.attempt`` count tasktable's attempts. ``errors`` holds the last
failure: its exception class path and traceback.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from ...core.status import TaskStatus
from ...core.task import Task
from ._compat import FAILED, READY, RUNNING, SUCCESSFUL, TaskError, TaskResult
from .handler import RESULT_FILE, DjangoTaskSpec

STATUS = {
    TaskStatus.PENDING: READY,
    TaskStatus.RUNNING: RUNNING,
    TaskStatus.SUCCESS: SUCCESSFUL,
    TaskStatus.ERROR: FAILED,
    TaskStatus.CANCELLED: FAILED,
}
#: The class path given for a failure that raised nothing in the task function
#: (its worker was lost, or its handler could not start).
UNKNOWN_ERROR = "tasktable.errors.TaskTableError"


def django_time(value: datetime | None) -> datetime | None:
    """An aware UTC time as Django wants it: aware with USE_TZ, else naive local time."""
    from django.conf import settings  # type: ignore[import-untyped]
    from django.utils import timezone  # type: ignore[import-untyped]

    if value is None or settings.USE_TZ:
        return value
    local: datetime = timezone.make_naive(value)
    return local


def _worker_ids(row: Task) -> list[str]:
    return [row.worker or "tasktable"] * row.attempts


def for_row(django_task: Any, spec: DjangoTaskSpec, row: Task, backend: str) -> Any:
    """A TaskResult with the row's status and times (no return value or errors yet)."""
    started = django_time(row.executed_at)
    return TaskResult(
        task=django_task,
        id=str(row.id),
        status=STATUS[row.status],
        enqueued_at=django_time(row.created_at),
        started_at=started,
        last_attempted_at=started,
        finished_at=django_time(row.finished_at),
        args=spec.args,
        kwargs=spec.kwargs,
        backend=backend,
        errors=[],
        worker_ids=_worker_ids(row),
    )


def running_result(django_task: Any, spec: DjangoTaskSpec, row: Task) -> Any:
    """The TaskResult a running task function sees (``TaskContext.task_result``)."""
    return for_row(django_task, spec, row, spec.backend)


def complete(result: Any, row: Task, outcome: bytes | None) -> Any:
    """Fill in the return value and errors from the row and its result file."""
    data: dict[str, Any] = {}
    if outcome:
        try:
            loaded = json.loads(outcome)
        except ValueError:
            loaded = None
        data = loaded if isinstance(loaded, dict) else {}
    if row.status is TaskStatus.SUCCESS:
        object.__setattr__(result, "_return_value", data.get("return_value"))
    elif row.error:
        path = data.get("exception_class_path") or UNKNOWN_ERROR
        result.errors.append(TaskError(exception_class_path=str(path), traceback=row.error))
    return result


def has_result_file(row: Task) -> bool:
    return any(f.filename == RESULT_FILE for f in row.files)
