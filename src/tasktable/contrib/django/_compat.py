"""The Tasks framework in use: Django 6's ``django.tasks``, else the ``django-tasks`` backport.

Both have the same API (the backport is where ``django.tasks`` was developed);
only a few names differ. Which one is chosen is decided once, at import: Django
6+ brings its own, older Django needs ``pip install django-tasks``. To mypy the
names here are ``Any``: the two packages cannot both be type-checked as one.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


def _framework() -> tuple[str, ModuleType]:
    try:
        return "django.tasks", importlib.import_module("django.tasks")
    except ImportError:
        pass
    try:
        return "django_tasks", importlib.import_module("django_tasks")
    except ImportError:
        raise ImportError(
            "tasktable.contrib.django needs Django's Tasks framework: Django 6 or newer "
            "(django.tasks), or the backport for Django 4.2+: pip install django-tasks."
        ) from None


PACKAGE, _tasks = _framework()
_base = importlib.import_module(f"{PACKAGE}.base")
_exceptions = importlib.import_module(f"{PACKAGE}.exceptions")
_signals = importlib.import_module(f"{PACKAGE}.signals")

BaseTaskBackend: Any = importlib.import_module(f"{PACKAGE}.backends.base").BaseTaskBackend
Task: Any = _base.Task
TaskContext: Any = _base.TaskContext
TaskError: Any = _base.TaskError
TaskResult: Any = _base.TaskResult
TaskResultStatus: Any = _base.TaskResultStatus
task_backends: Any = _tasks.task_backends

READY: Any = TaskResultStatus.READY
RUNNING: Any = TaskResultStatus.RUNNING
FAILED: Any = TaskResultStatus.FAILED
#: SUCCEEDED in django-tasks before 0.12, SUCCESSFUL since (and in Django).
SUCCESSFUL: Any = getattr(TaskResultStatus, "SUCCESSFUL", None) or TaskResultStatus.SUCCEEDED

InvalidTask: Any = getattr(_exceptions, "InvalidTask", None) or _exceptions.InvalidTaskError
TaskResultDoesNotExist: Any = _exceptions.TaskResultDoesNotExist

task_enqueued: Any = _signals.task_enqueued
task_started: Any = _signals.task_started
task_finished: Any = _signals.task_finished

if PACKAGE == "django.tasks":
    normalize_json: Any = importlib.import_module("django.utils.json").normalize_json
else:
    normalize_json = importlib.import_module("django_tasks.utils").normalize_json
