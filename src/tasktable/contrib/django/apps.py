"""The Django app: ``manage.py migrate`` creates and upgrades tasktable's tables,
and ``manage.py tasktable ...`` runs the tasktable CLI on them."""

from __future__ import annotations

import sys
from typing import Any

from django.apps import AppConfig  # type: ignore[import-untyped]
from django.db.models.signals import post_migrate  # type: ignore[import-untyped]


class TaskTableConfig(AppConfig):  # type: ignore[misc]  # Django is untyped here
    name = "tasktable.contrib.django"
    label = "tasktable"
    verbose_name = "tasktable"

    def ready(self) -> None:
        post_migrate.connect(migrate_tasktable, sender=self, dispatch_uid="tasktable-migrate")


def migrate_tasktable(
    sender: Any, using: str = "default", verbosity: int = 1, **kwargs: Any
) -> None:
    """After ``manage.py migrate --database X``: apply tasktable's own numbered
    migrations in X when a TaskTableBackend keeps its tasks there (idempotent)."""
    from ._compat import task_backends
    from .backend import TaskTableBackend
    from .connection import DjangoDatabaseTable

    if not any(
        isinstance(backend, TaskTableBackend)
        and backend.joins_transactions
        and backend.database == using
        for backend in task_backends.all()
    ):
        return
    applied = DjangoDatabaseTable(using).migrate()
    if applied and verbosity >= 1:
        out = kwargs.get("stdout") or sys.stdout
        out.write(f"  tasktable: applied schema migration(s) {', '.join(map(str, applied))}\n")
