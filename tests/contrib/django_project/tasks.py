"""Task functions of the test project (written for both django.tasks and django_tasks)."""

from __future__ import annotations

from typing import Any

from django.db import connections

from tasktable.contrib.django import current_task
from tasktable.contrib.django._compat import PACKAGE

if PACKAGE == "django.tasks":
    from django.tasks import task
else:
    from django_tasks import task


@task()
def add(a: int, b: int) -> int:
    return a + b


@task(queue_name="emails", priority=10)
def echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"args": list(args), "kwargs": kwargs}


@task()
def fail(message: str) -> None:
    raise ValueError(message)


class OrderError(Exception):
    pass


@task()
def fail_custom() -> None:
    raise OrderError("custom")


@task(takes_context=True)
def with_context(context: Any, label: str) -> dict[str, Any]:
    return {"label": label, "attempt": context.attempt, "id": context.task_result.id}


@task()
async def async_add(a: int, b: int) -> int:
    return a + b


@task()
def unserializable() -> object:
    return object()


@task()
def report(total: int) -> str:
    running = current_task()
    assert running is not None
    for done in range(1, total + 1):
        running.set_progress(done, total)
    running.add_message(f"Counted to {total}.", "success")
    return "ok"


@task()
def write_note(alias: str, text: str) -> int:
    from .notes.models import Note

    note = Note.objects.using(alias).create(text=text)
    return int(note.pk)


@task()
def count_notes(alias: str) -> int:
    from .notes.models import Note

    connections[alias].close_if_unusable_or_obsolete()
    return int(Note.objects.using(alias).count())
