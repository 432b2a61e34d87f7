from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class NotesConfig(AppConfig):
    name = "tests.contrib.django_project.notes"
    label = "notes"

    def ready(self) -> None:
        from tasktable.contrib.django._compat import task_started

        task_started.connect(mark_started, dispatch_uid="notes-mark-started")


def mark_started(sender: Any, task_result: Any, **kwargs: Any) -> None:
    """Proves task_started is sent in the worker: the ``report`` task gets a message."""
    from tasktable.contrib.django import current_task

    running = current_task()
    if running is not None and task_result.task.name == "report":
        running.add_message("task_started signal received")
