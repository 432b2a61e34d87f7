"""Thread slots: N threads, each running one task at a time on its own event loop.

A slot takes a claimed task from the supervisor, runs it through the executor,
persists the outcome (fenced), and tells the supervisor it is free again.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable

from ..core.task import Task
from ..settings import Settings
from ..storage.base import Storage
from .completer import Completer
from .executor import execute
from .reporter import StorageReporter

log = logging.getLogger("tasktable.worker")

_STOP = object()


class ThreadSlots:
    """A fixed pool of slot threads fed from one in-memory queue."""

    def __init__(
        self,
        size: int,
        storage: Storage,
        settings: Settings,
        completer: Completer,
        on_done: Callable[[Task], None],
    ) -> None:
        self.size = size
        self.storage = storage
        self.settings = settings
        self.completer = completer
        self.on_done = on_done
        self._inbox: queue.Queue[object] = queue.Queue()
        self._busy = 0
        self._lock = threading.Lock()
        self._running: dict[int, Task] = {}
        self._threads = [
            threading.Thread(target=self._loop, name=f"tasktable-slot-{i + 1}", daemon=True)
            for i in range(size)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    @property
    def free(self) -> int:
        with self._lock:
            return self.size - self._busy

    @property
    def busy(self) -> int:
        with self._lock:
            return self._busy

    def running(self) -> list[Task]:
        with self._lock:
            return list(self._running.values())

    def submit(self, task: Task) -> None:
        with self._lock:
            self._busy += 1
            self._running[task.id] = task
        self._inbox.put(task)

    def stop(self) -> None:
        for _ in self._threads:
            self._inbox.put(_STOP)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the slot threads; True when all have ended."""
        for thread in self._threads:
            thread.join(timeout)
        return not any(t.is_alive() for t in self._threads)

    def _loop(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            while True:
                item = self._inbox.get()
                if item is _STOP:
                    return
                assert isinstance(item, Task)
                self._run(item, loop)
        finally:
            loop.close()

    def _run(self, task: Task, loop: asyncio.AbstractEventLoop) -> None:
        try:
            outcome, _ = execute(
                task,
                StorageReporter(self.storage, task),
                allowlist=self.settings.handlers,
                max_file_bytes=self.settings.max_file_bytes,
                loop=loop,
            )
            self.completer.complete(task, outcome)
        except Exception:  # the executor never raises; this is a bug or a lost database
            log.exception("Slot failed while finishing task %s", task.id)
        finally:
            with self._lock:
                self._busy -= 1
                self._running.pop(task.id, None)
            self.on_done(task)
