"""The django-tasks no-op task (imported only once Django is configured)."""

from django_tasks import task


@task()
def noop() -> None:
    return None
