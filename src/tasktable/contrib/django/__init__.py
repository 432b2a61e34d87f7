"""tasktable for Django: a backend for Django's Tasks framework, and more.

- :class:`TaskTableBackend`: ``TASKS = {"default": {"BACKEND":
  "tasktable.contrib.django.TaskTableBackend"}}``; ``@task`` functions become
  tasktable rows, in the project's own database (joining its transactions).
- ``INSTALLED_APPS += ["tasktable.contrib.django"]``: ``manage.py migrate``
  creates tasktable's tables, ``manage.py tasktable worker`` runs them.
- :func:`get_table`: the backend's :class:`~tasktable.TaskTable`, to enqueue
  tasktable handlers in the request's transaction.
- :func:`add_background_notice`: the seed's notice as a Django message.
- :func:`current_task`: the running tasktable task, inside a ``@task`` function.

Works with Django 6's ``django.tasks`` and with the ``django-tasks`` backport.
"""

from __future__ import annotations

from ...app import TaskTable
from .backend import TaskTableBackend
from .handler import current_task
from .messages import add_background_notice


def get_table(backend: str = "default") -> TaskTable:
    """The TaskTable of the TaskTableBackend named ``backend`` in ``TASKS``."""
    from ._compat import task_backends

    chosen = task_backends[backend]
    if not isinstance(chosen, TaskTableBackend):
        raise TypeError(f"Task backend {backend!r} is not a TaskTableBackend.")
    return chosen.table


__all__ = ["TaskTableBackend", "add_background_notice", "current_task", "get_table"]
