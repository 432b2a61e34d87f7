"""``TaskTableBackend``: a backend for Django's Tasks framework that keeps tasks in tasktable.

.. code-block:: python

    TASKS = {
        "default": {
            "BACKEND": "tasktable.contrib.django.TaskTableBackend",
            "QUEUES": ["default", "emails"],
            "OPTIONS": {},  # or {"DATABASE": "other"}, or {"URL": "postgresql://..."}
        }
    }

OPTIONS (all optional):

- ``DATABASE``: the Django database alias whose connection tasks are written
  on (default ``"default"``). ``enqueue()`` then joins the caller's transaction.
- ``URL``: a separate tasktable database instead (``sqlite:///...``,
  ``postgresql://...``, ``mysql://...``); enqueue commits on its own.
- ``DASHBOARD_URL``: where the dashboard runs, for links in notices
  (default ``TASKTABLE_DASHBOARD_URL``, else ``http://127.0.0.1:8080``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from ...app import TaskTable
from ...core.validation import validate_queue
from ...errors import InvalidInput, TaskNotFound
from ...settings import Settings
from . import results
from ._compat import (
    READY,
    BaseTaskBackend,
    InvalidTask,
    TaskResult,
    TaskResultDoesNotExist,
    task_enqueued,
)
from .connection import READ_COMMITTED, DjangoDatabaseTable, django_database_url, mysql_isolation
from .handler import HANDLER_PATH, RESULT_FILE, DjangoTaskSpec, load_django_task

OPTION_NAMES = ("DATABASE", "URL", "DASHBOARD_URL")

_tables: dict[tuple[str, str, str | None], TaskTable] = {}
_tables_lock = threading.Lock()


def _table_for(database: str | None, url: str | None, dashboard_url: str | None) -> TaskTable:
    """One TaskTable per configuration and process (Django makes a backend per thread)."""
    key = ("url", url, dashboard_url) if url else ("database", database or "default", dashboard_url)
    with _tables_lock:
        table = _tables.get(key)
        if table is None:
            settings = Settings.from_env(dashboard_url=dashboard_url)
            if url:
                table = TaskTable(url, settings=settings)
            else:
                table = DjangoDatabaseTable(database or "default", settings=settings)
            _tables[key] = table
        return table


class TaskTableBackend(BaseTaskBackend):  # type: ignore[misc]  # base chosen at import: Any to mypy
    """Django Tasks backend: each enqueued task is a tasktable row a worker runs."""

    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: Mapping[str, Any]) -> None:
        super().__init__(alias, params)
        options: Mapping[str, Any] = self.options
        unknown = sorted(set(options) - set(OPTION_NAMES))
        if unknown:
            from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]

            raise ImproperlyConfigured(
                f"Task backend {alias!r}: unknown OPTIONS {', '.join(unknown)}; "
                f"tasktable knows {', '.join(OPTION_NAMES)}."
            )
        self.url: str | None = options.get("URL") or None
        self.database: str = options.get("DATABASE") or "default"
        self.dashboard_url: str | None = options.get("DASHBOARD_URL") or None
        if self.url and options.get("DATABASE"):
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured(
                f"Task backend {alias!r}: give OPTIONS['DATABASE'] or OPTIONS['URL'], not both."
            )

    # -- where the tasks live ---------------------------------------------------------
    @property
    def table(self) -> TaskTable:
        """The TaskTable of this backend: on Django's connection unless OPTIONS['URL'] is set.

        Use it to enqueue tasktable handlers (messages, progress, action links)
        inside the request's transaction, or for :meth:`TaskTable.notice`.
        """
        return _table_for(self.database, self.url, self.dashboard_url)

    @property
    def worker_url(self) -> str:
        """The database URL workers and the CLI use for this backend."""
        return self.url or django_database_url(self.database)

    @property
    def joins_transactions(self) -> bool:
        return self.url is None

    # -- the Tasks API ----------------------------------------------------------------
    def validate_task(self, task: Any) -> None:
        super().validate_task(task)
        try:
            validate_queue(task.queue_name)
        except InvalidInput as exc:
            raise InvalidTask(str(exc)) from None

    def enqueue(self, task: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        self.validate_task(task)
        result = TaskResult(
            task=task,
            id="",
            status=READY,
            enqueued_at=None,
            started_at=None,
            last_attempted_at=None,
            finished_at=None,
            args=args,  # made JSON-shaped here: a value JSON cannot hold raises TypeError
            kwargs=kwargs,
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        run_after = _utc(task.run_after)
        spec = DjangoTaskSpec(
            path=task.module_path,
            args=result.args,
            kwargs=result.kwargs,
            backend=self.alias,
            run_after=run_after,
        )
        row = self.table.enqueue(
            HANDLER_PATH,
            spec.to_args(),
            name=task.name,
            queue=task.queue_name,
            priority=task.priority,
            run_at=run_after,
        )
        object.__setattr__(result, "id", str(row.id))
        object.__setattr__(result, "enqueued_at", results.django_time(row.created_at))
        task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> Any:
        try:
            row = self.table.get(int(result_id))
        except (TypeError, ValueError, TaskNotFound):
            raise TaskResultDoesNotExist(result_id) from None
        if row.handler != HANDLER_PATH:
            raise TaskResultDoesNotExist(result_id)
        spec = DjangoTaskSpec.from_args(row.args)
        django_task = load_django_task(spec.path).using(
            priority=row.priority,
            queue_name=row.queue,
            run_after=spec.run_after,
            backend=self.alias,
        )
        result = results.for_row(django_task, spec, row, self.alias)
        outcome = None
        if results.has_result_file(row):
            _, outcome = self.table.read_file(row.id, RESULT_FILE)
        return results.complete(result, row, outcome)

    def check(self, **kwargs: Any) -> list[Any]:
        from django.conf import settings  # type: ignore[import-untyped]
        from django.core import checks  # type: ignore[import-untyped]
        from django.db import connections  # type: ignore[import-untyped]

        found: list[Any] = list(super().check(**kwargs))
        if self.url:
            return found
        try:
            django_database_url(self.database)
        except Exception as exc:
            found.append(checks.Error(str(exc), id="tasktable.E001"))
            return found
        if connections[self.database].vendor == "mysql":
            level = mysql_isolation(self.database)
            if level != READ_COMMITTED:
                found.append(
                    checks.Warning(
                        f"Task backend {self.alias!r} writes tasks on database "
                        f"{self.database!r}, whose connections run at "
                        f"{(level or 'the server default').upper()} isolation; tasktable "
                        "is written for READ COMMITTED (Django's default on MySQL/MariaDB): "
                        "with REPEATABLE READ an enqueue with a unique_key that races "
                        "another can fail instead of returning the task that won.",
                        hint=f"Remove OPTIONS['isolation_level'] of DATABASES[{self.database!r}] "
                        "or set it to 'read committed'.",
                        id="tasktable.W002",
                    )
                )
        if "tasktable.contrib.django" not in settings.INSTALLED_APPS:
            found.append(
                checks.Warning(
                    f"Task backend {self.alias!r} keeps tasks in database {self.database!r}, "
                    "whose tasktable tables `manage.py migrate` creates only when "
                    "'tasktable.contrib.django' is in INSTALLED_APPS.",
                    hint="Add 'tasktable.contrib.django' to INSTALLED_APPS.",
                    id="tasktable.W001",
                )
            )
        return found


def _utc(value: datetime | None) -> datetime | None:
    """``run_after`` in UTC; a naive one (USE_TZ = False) is in Django's TIME_ZONE."""
    if value is None:
        return None
    if value.tzinfo is None:
        from django.utils import timezone  # type: ignore[import-untyped]

        value = timezone.make_aware(value)
    return value.astimezone(UTC)
