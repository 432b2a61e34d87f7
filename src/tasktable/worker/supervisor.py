"""The worker process: claims tasks into free slots, and shuts down cleanly.

One ``Worker.run()`` registers a fresh random worker id, starts the slots, the
heartbeat and the maintenance loops (rescuer, cleaner), then loops: claim as
many due tasks as there are free slots in one statement, hand them to slots,
and wait until a slot frees up or the poll interval passes.

SIGTERM/SIGINT stop claiming at once; running tasks get ``grace`` seconds to
finish, then are released back to ``pending`` (their attempt not charged).
A second signal releases them at once. Nothing is left ``running``.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING

from ..core.task import Message, Task
from ..errors import DatabaseError
from ..storage.base import WorkerInfo
from .completer import Completer
from .maintenance import Cleaner, Every, Heartbeat, Rescuer
from .slots import ThreadSlots

if TYPE_CHECKING:
    from ..app import TaskTable

log = logging.getLogger("tasktable.worker")

RELEASE_MESSAGE = "The worker shut down before this task finished; it will run again."


def new_worker_id() -> str:
    return secrets.token_hex(8)


class Worker:
    def __init__(
        self,
        table: TaskTable,
        *,
        slots: int = 5,
        queues: Sequence[str] = (),
        burst: bool = False,
        max_seconds: float | None = None,
        grace: float = 25.0,
        max_db_outage: float = 300.0,
    ) -> None:
        if slots < 1:
            raise ValueError("A worker needs at least one slot.")
        self.table = table
        self.settings = table.settings
        self.storage = table.storage
        self.size = slots
        self.queues = tuple(queues)
        self.burst = burst
        self.max_seconds = max_seconds
        self.grace = grace
        self.max_db_outage = max_db_outage
        self.id = new_worker_id()
        self.wake = threading.Event()
        self.stop_event = threading.Event()  # stops the background loops
        self.stopping = False
        self.signals = 0
        self.release_deadline: float | None = None  # set by a stop request
        self.claimed = 0
        self.completer = Completer(self.storage)
        self.slots = ThreadSlots(
            slots, self.storage, self.settings, self.completer, lambda _t: self.wake.set()
        )

    # -- lifecycle -----------------------------------------------------------------
    def request_stop(self) -> None:
        """Stop claiming; running tasks finish within the grace period."""
        if self.release_deadline is None:
            self.release_deadline = time.monotonic() + self.grace
        self.stopping = True
        self.wake.set()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.signals += 1
        log.warning(
            "Received %s: %s",
            signal.Signals(signum).name,
            "stopping claims, finishing running tasks" if self.signals == 1 else "exiting now",
        )
        self.request_stop()

    def _install_signals(self) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)

    def _info(self) -> WorkerInfo:
        return WorkerInfo(
            id=self.id,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            slots=self.size,
            queues=self.queues,
        )

    def run(self) -> int:
        """Run until stopped (or, in burst mode, until nothing is due). Returns the exit code."""
        self._install_signals()
        self.storage.register_worker(self._info())
        log.info(
            "Worker %s started: %d slot(s), queues %s",
            self.id,
            self.size,
            ",".join(self.queues) or "all",
        )
        self.slots.start()
        self._start_background()
        code = 0
        try:
            code = self._claim_loop()
        finally:
            self._shutdown()
        return code

    def _start_background(self) -> None:
        hb = self.settings.heartbeat_interval.total_seconds()
        dead = self.settings.dead_after.total_seconds()
        heartbeat = Heartbeat(self.storage, lambda: self.id)
        rescuer = Rescuer(self.storage, dead)
        cleaner = Cleaner(self.storage, self.settings.retention.total_seconds())
        Every("tasktable-heartbeat", hb, lambda: self._beat(heartbeat), self.stop_event).start()
        Every(
            "tasktable-rescuer", max(hb, dead / 2), rescuer.run_once, self.stop_event, first=0.0
        ).start()
        Every(
            "tasktable-cleaner",
            self.settings.clean_interval.total_seconds(),
            lambda: cleaner.run_once(self.stop_event),
            self.stop_event,
            first=5.0,
        ).start()

    def _beat(self, heartbeat: Heartbeat) -> None:
        if heartbeat.run_once():
            return
        # Declared dead (e.g. paused past dead_after): its tasks were rescued, its
        # late writes are fenced out. Never claim under that id again.
        old = self.id
        self.id = new_worker_id()
        log.error("Worker %s was declared dead; continuing as %s", old, self.id)
        self.storage.register_worker(self._info())

    def _claim_loop(self) -> int:
        started = time.monotonic()
        poll = self.settings.poll_interval.total_seconds()
        outage_since: float | None = None
        while not self.stopping:
            if self.max_seconds is not None and time.monotonic() - started >= self.max_seconds:
                log.info("Worker %s: --max-seconds reached; finishing running tasks", self.id)
                break
            free = self.slots.free
            claimed: list[Task] = []
            if free:
                try:
                    claimed = self.storage.claim(self.id, self.queues, free)
                    outage_since = None
                except DatabaseError as exc:
                    now = time.monotonic()
                    outage_since = outage_since or now
                    if now - outage_since > self.max_db_outage:
                        log.error(
                            "Worker %s: database unreachable for %.0fs; exiting: %s",
                            self.id,
                            now - outage_since,
                            exc,
                        )
                        return 3
                    log.warning("Worker %s: cannot claim: %s", self.id, exc)
                    self.wake.wait(min(5.0, poll * 2))
                    self.wake.clear()
                    continue
                for task in claimed:
                    self.slots.submit(task)
                self.claimed += len(claimed)
                if len(claimed) == free:
                    continue  # there may be more due: fill the slots again
            if self.burst and not claimed and self.slots.busy == 0:
                log.info("Worker %s: nothing due; burst run done", self.id)
                break
            self.wake.wait(poll)
            self.wake.clear()
        return 0

    def _shutdown(self) -> None:
        # Burst and --max-seconds runs wait for running tasks; a stop request
        # (signal) waits at most the grace period, a second signal not at all.
        self.stopping = True
        while self.slots.busy and self.signals < 2:
            if self.release_deadline is not None and time.monotonic() >= self.release_deadline:
                break
            self.wake.wait(0.05)
            self.wake.clear()
        left = self.slots.running()
        for task in left:
            if self.storage.release(task, Message(text=RELEASE_MESSAGE, level="warning")):
                log.warning("Task %s (%s) released to pending at shutdown", task.id, task.name)
        self.slots.stop()
        if not left:
            self.slots.join(timeout=5)
        self.stop_event.set()
        try:
            self.storage.deregister_worker(self.id)
        except DatabaseError as exc:
            log.warning("Worker %s: could not deregister: %s", self.id, exc)
        log.info("Worker %s stopped", self.id)
