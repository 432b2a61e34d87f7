"""django-tasks with django-tasks-db (its database backend; split out of django-tasks 0.12).

A no-op ``@task()``; enqueue: ``noop.enqueue()`` (no bulk API). Its worker,
``manage.py db_worker``, runs one task at a time, so "5 concurrency" is 5
``db_worker`` processes (``--no-startup-delay``; ``--batch`` to drain; the
default 1 s poll interval). SQLite: WAL, synchronous=NORMAL and
``transaction_mode=IMMEDIATE`` (as tasktable sets it). Times are the result
rows' ``enqueued_at``/``started_at``/``finished_at`` (each process's clock, one host).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from .base import Peer, Record, exactly_once


def configure(backend: str, url: str) -> None:
    import django
    from django.conf import settings

    if settings.configured:
        return
    if backend == "sqlite":
        database: dict[str, Any] = {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": url,
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
            },
        }
    else:
        parts = urlsplit(url)
        database = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": parts.path.lstrip("/"),
            "USER": parts.username or "",
            "PASSWORD": parts.password or "",
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or 5432),
        }
    settings.configure(
        INSTALLED_APPS=["django_tasks", "django_tasks_db"],
        DATABASES={"default": database},
        TASKS={"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}},
        USE_TZ=True,
        LOGGING_CONFIG=None,
    )
    django.setup()


class DjangoTasks(Peer):
    name = "django-tasks"
    backends = ("sqlite", "postgresql")
    processes = 5
    worker_concurrency = 1
    bulk = False

    def __init__(self, backend: str, url: str, state: str) -> None:
        super().__init__(backend, url, state)
        configure(backend, url)
        from django_tasks_db.models import DBTaskResult

        from .django_noop import noop

        self.task = noop
        self.model = DBTaskResult

    def setup(self) -> None:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)

    def enqueue(self) -> None:
        self.task.enqueue()

    def run_worker(self, burst: bool, expect: int) -> None:
        from django.core.management import call_command

        call_command("db_worker", batch=burst, startup_delay=False, verbosity=0)

    def done(self) -> int:
        return int(self.model.objects.filter(status="SUCCESSFUL").count())

    def records(self, expected: int) -> list[Record]:
        rows = list(
            self.model.objects.values_list(
                "status", "enqueued_at", "started_at", "finished_at", "worker_ids"
            )
        )
        ok = [r for r in rows if r[0] == "SUCCESSFUL" and r[2] is not None and r[3] is not None]
        exactly_once(len(rows), sum(len(r[4]) for r in rows), len(ok), expected)
        return [Record(r[1].timestamp(), r[2].timestamp(), r[3].timestamp()) for r in ok]

    def analyze(self) -> None:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {self.model._meta.db_table}")

    def close(self) -> None:
        from django.db import connections

        connections.close_all()
