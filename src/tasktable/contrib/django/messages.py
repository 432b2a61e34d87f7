"""The seed's ``addBackgroundTaskNotice`` for Django: a message with a link to the task."""

from __future__ import annotations

from typing import Any

from ...core.task import Task
from ...notice import Notice


def add_background_notice(
    request: Any,
    task: Task | Any,
    *,
    backend: str = "default",
    level: int | None = None,
) -> Notice:
    """Add '"<name>" will run in the background (task #N).' with a link to the task in
    the dashboard to Django's messages, and return the :class:`~tasktable.Notice`.

    ``task`` is what an enqueue returned: a tasktable ``Task`` or a Django
    ``TaskResult``. ``backend`` names the TASKS entry it was enqueued on.
    The message is marked safe; :meth:`Notice.html` escapes the task's name.
    """
    from django.contrib import messages  # type: ignore[import-untyped]
    from django.utils.safestring import mark_safe  # type: ignore[import-untyped]

    from ._compat import task_backends
    from .backend import TaskTableBackend

    chosen = task_backends[getattr(task, "backend", None) or backend]
    if not isinstance(chosen, TaskTableBackend):
        raise TypeError(f"Task backend {chosen.alias!r} is not a TaskTableBackend.")
    table = chosen.table
    row = task if isinstance(task, Task) else table.get(int(task.id))
    notice = table.notice(row)
    messages.add_message(
        request,
        messages.INFO if level is None else level,
        mark_safe(notice.html()),
        extra_tags="tasktable",
    )
    return notice
