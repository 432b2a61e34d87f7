"""The seed's ``addBackgroundTaskNotice``: "<task name> will run in the background"."""

from __future__ import annotations

from dataclasses import dataclass

from .core.task import Task


@dataclass(frozen=True, kw_only=True)
class Notice:
    """A message for the user who started a task, with a link to it in the dashboard."""

    task_id: int
    task_name: str
    text: str
    url: str

    def __str__(self) -> str:
        return self.text

    def html(self) -> str:
        from html import escape

        return f'{escape(self.text)} <a href="{escape(self.url)}">View task #{self.task_id}</a>'


def background_notice(task: Task, dashboard_url: str) -> Notice:
    base = dashboard_url.rstrip("/")
    return Notice(
        task_id=task.id,
        task_name=task.name,
        text=f'"{task.name}" will run in the background (task #{task.id}).',
        url=f"{base}/tasks/{task.id}",
    )
