"""The tasktable handler that runs Django ``@task`` functions in a tasktable worker.

A row enqueued by :class:`~tasktable.contrib.django.TaskTableBackend` has this
handler and these args::

    {"task": "myapp.tasks.send_welcome", "args": [...], "kwargs": {...},
     "backend": "default", "run_after": null}

The handler sets Django up if it is not yet (``DJANGO_SETTINGS_MODULE``),
imports the task function by its module path (checked against
``TASKTABLE_HANDLERS`` first, when that is set), calls it, and stores what came
of it in the file ``django-result.json``: the JSON return value, or the
exception's class path (the traceback is the task's ``error``, as for any task).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ...context import RunningTask
from ...core.handlers import Allowlist
from ...errors import HandlerError
from ...handler import TaskHandler

RESULT_FILE = "django-result.json"
HANDLER_PATH = "tasktable.contrib.django.handler:RunDjangoTask"

_current: ContextVar[RunningTask | None] = ContextVar("tasktable_django_task", default=None)


def current_task() -> RunningTask | None:
    """The tasktable task running the current Django task function, else None.

    Lets a ``@task`` function add messages, report progress, set the action link
    or attach files, as a tasktable handler does::

        task = current_task()
        if task is not None:
            task.set_progress(done, total)
    """
    return _current.get()


@dataclass(frozen=True, kw_only=True)
class DjangoTaskSpec:
    """The args of a row that runs a Django task function."""

    path: str
    args: list[Any]
    kwargs: dict[str, Any]
    backend: str
    run_after: datetime | None

    @classmethod
    def from_args(cls, data: Any) -> DjangoTaskSpec:
        if not isinstance(data, dict) or not isinstance(data.get("task"), str):
            raise HandlerError(
                "A Django task's args must be an object with the task's module path in 'task'."
            )
        args, kwargs = data.get("args", []), data.get("kwargs", {})
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise HandlerError("A Django task's 'args' must be a list and 'kwargs' an object.")
        when = data.get("run_after")
        return cls(
            path=data["task"],
            args=args,
            kwargs=kwargs,
            backend=str(data.get("backend") or "default"),
            run_after=datetime.fromisoformat(when) if isinstance(when, str) else None,
        )

    def to_args(self) -> dict[str, Any]:
        return {
            "task": self.path,
            "args": self.args,
            "kwargs": self.kwargs,
            "backend": self.backend,
            "run_after": self.run_after.isoformat() if self.run_after else None,
        }


def ensure_django() -> None:
    """Set Django up when a plain ``tasktable worker`` runs a Django task."""
    from django.apps import apps  # type: ignore[import-untyped]

    if apps.ready:
        return
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        raise HandlerError(
            "Django is not set up in this worker: run it with "
            "`python -m tasktable.contrib.django worker` or `python manage.py tasktable worker`, "
            "or set DJANGO_SETTINGS_MODULE."
        )
    import django  # type: ignore[import-untyped]

    django.setup()


def load_django_task(path: str) -> Any:
    """Import the Django Task at ``path`` (``module.function``), allowlist first."""
    from django.utils.module_loading import import_string  # type: ignore[import-untyped]

    from ._compat import Task

    allowlist = Allowlist.parse(os.environ.get("TASKTABLE_HANDLERS"))
    allowlist.check(path)  # raises HandlerNotAllowed before anything is imported
    try:
        found = import_string(path)
    except ImportError as exc:
        raise HandlerError(f"Django task {path!r} cannot be imported: {exc}") from exc
    if not isinstance(found, Task):
        raise HandlerError(f"{path!r} is not a Django task: decorate the function with @task.")
    return found


def exception_path(exc: BaseException) -> str:
    kind = type(exc)
    return f"{kind.__module__}.{kind.__qualname__}"


def result_file(*, return_value: Any = None, exception: str | None = None) -> bytes:
    data = {"exception_class_path": exception} if exception else {"return_value": return_value}
    return json.dumps(data, ensure_ascii=False).encode()


class RunDjangoTask(TaskHandler):
    """Runs one Django ``@task`` function (see the module docstring)."""

    task_name = "Django task"

    def run_task(self, task: RunningTask) -> Any:
        ensure_django()
        from django.db import close_old_connections  # type: ignore[import-untyped]

        from .results import running_result

        spec = DjangoTaskSpec.from_args(task.args)
        django_task = load_django_task(spec.path)
        result = running_result(django_task, spec, task.record)
        with _running(task), _django_connections(close_old_connections):
            return _call(django_task, result, task)


@contextmanager
def _running(task: RunningTask) -> Iterator[None]:
    token = _current.set(task)
    try:
        yield
    finally:
        _current.reset(token)


@contextmanager
def _django_connections(close_old_connections: Any) -> Iterator[None]:
    # As around a request: drop connections that are broken or past CONN_MAX_AGE.
    close_old_connections()
    try:
        yield
    finally:
        close_old_connections()


def _call(django_task: Any, result: Any, task: RunningTask) -> Any:
    from django.utils import timezone  # type: ignore[import-untyped]

    from ._compat import (
        FAILED,
        SUCCESSFUL,
        TaskContext,
        normalize_json,
        task_finished,
        task_started,
    )
    from .backend import TaskTableBackend

    task_started.send(sender=TaskTableBackend, task_result=result)
    try:
        if django_task.takes_context:
            value = django_task.call(TaskContext(task_result=result), *result.args, **result.kwargs)
        else:
            value = django_task.call(*result.args, **result.kwargs)
        value = normalize_json(value)  # a value JSON cannot hold fails the task
    except Exception as exc:
        task.attach_file(result_file(exception=exception_path(exc)), RESULT_FILE)
        object.__setattr__(result, "status", FAILED)
        object.__setattr__(result, "finished_at", timezone.now())
        task_finished.send(sender=TaskTableBackend, task_result=result)
        raise
    task.attach_file(result_file(return_value=value), RESULT_FILE)
    object.__setattr__(result, "status", SUCCESSFUL)
    object.__setattr__(result, "finished_at", timezone.now())
    object.__setattr__(result, "_return_value", value)
    task_finished.send(sender=TaskTableBackend, task_result=result)
    return value
