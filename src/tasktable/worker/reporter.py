"""The reporter a handler's writes go through inside a worker: fenced storage writes."""

from __future__ import annotations

import logging

from ..core.task import ActionLink, Message, Progress, Task
from ..storage.base import Storage

log = logging.getLogger("tasktable.worker")


class StorageReporter:
    """Writes live progress and files for one claimed task, each fenced by its claim."""

    def __init__(self, storage: Storage, task: Task) -> None:
        self.storage = storage
        self.task = task
        self.lost = False

    def report(
        self, progress: Progress | None, messages: tuple[Message, ...], link: ActionLink | None
    ) -> bool:
        if self.lost:
            return False
        ok = self.storage.report(self.task, progress, messages, link)
        if not ok:
            self._lost("progress")
        return ok

    def attach(self, filename: str, content_type: str, data: bytes) -> bool:
        if self.lost:
            return False
        ok = self.storage.attach_file(self.task, filename, content_type, data)
        if not ok:
            self._lost(f"file {filename!r}")
        return ok

    def cancel_requested(self) -> bool:
        try:
            return self.storage.get(self.task.id).cancel_requested
        except Exception:
            return False

    def _lost(self, what: str) -> None:
        self.lost = True
        log.warning("Task %s: lease lost; %s not saved", self.task.id, what)
