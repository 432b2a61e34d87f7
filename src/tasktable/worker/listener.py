"""The wake-up listener: sets the claim loop's ``wake`` event when a task is enqueued.

Chosen from the storage's capabilities (``listen_notify`` on PostgreSQL,
``same_host_wakeup`` on SQLite); without either, the claim loop only polls.
Polling stays on as the fallback in every case: a lost listener connection
costs latency, never a task. The listener reconnects with capped back-off.

A stopping worker calls ``interrupt()`` after setting ``stop``: it writes to a
pipe the PostgreSQL listener waits on beside its socket, so the worker's exit
does not wait for the listener's next tick.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Sequence

from ..storage.base import Storage

log = logging.getLogger("tasktable.worker")


def can_listen(storage: Storage) -> bool:
    caps = storage.capabilities
    return caps.listen_notify or caps.same_host_wakeup


class Listener:
    """A thread around ``storage.listen``: wake on a notice for one of ``queues``."""

    def __init__(
        self,
        storage: Storage,
        queues: Sequence[str],
        wake: threading.Event,
        stop: threading.Event,
    ) -> None:
        self.storage = storage
        self.queues = frozenset(queues)
        self.wake = wake
        self.stop = stop
        self.wakes = 0
        self.failures = 0
        self.thread = threading.Thread(target=self.run, name="tasktable-listener", daemon=True)
        self._pipe: tuple[int, int] | None = None  # (read, write): see interrupt()
        self._pipe_lock = threading.Lock()

    def start(self) -> None:
        self._pipe = os.pipe()
        os.set_blocking(self._pipe[1], False)  # interrupt() never waits
        self.thread.start()

    def interrupt(self) -> None:
        """End the listener's wait now (after ``stop`` is set)."""
        with self._pipe_lock:
            if self._pipe is not None:
                with contextlib.suppress(BlockingIOError):  # full: a wake-up is pending
                    os.write(self._pipe[1], b"\0")

    def on_wake(self, queue: str | None) -> None:
        if queue is None or not self.queues or queue in self.queues:
            self.wakes += 1
            self.wake.set()

    def run(self) -> None:
        try:
            self._listen()
        finally:
            with self._pipe_lock:
                if self._pipe is not None:
                    os.close(self._pipe[0])
                    os.close(self._pipe[1])
                    self._pipe = None

    def _listen(self) -> None:
        delay = 0.5
        interrupt = None if self._pipe is None else self._pipe[0]
        while not self.stop.is_set():
            try:
                self.storage.listen(self.on_wake, self.stop, interrupt)
            except Exception as exc:  # a lost connection: poll meanwhile, then reconnect
                self.failures += 1
                log.debug("Wake-up listener lost its connection (%s); polling meanwhile", exc)
                self.stop.wait(delay)
                delay = min(delay * 2, 10.0)
            else:
                delay = 0.5
