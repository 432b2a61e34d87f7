"""huey: a no-op task; ``create_consumer(workers=5, worker_type="thread")``, defaults otherwise.

SQLite: ``SqliteHuey`` with its defaults (WAL; SQLite's default synchronous
mode). PostgreSQL: ``huey.contrib.sql_huey.SqlHuey`` over peewee/psycopg2.
The consumer polls (0.1 s, backing off by 1.15 up to 10 s when idle: huey's
defaults). huey deletes a task when it dequeues it and keeps no history, so
starts and finishes are taken from huey's own signals (``executing``,
``complete``) inside the consumer process and written to a file at exit;
exactly-once is checked from those (one ``executing`` per task id) and an
empty queue.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from huey import SqliteHuey, signals

from .base import Peer, Record, exactly_once


class Huey(Peer):
    name = "huey"
    backends = ("sqlite", "postgresql")
    bulk = False  # huey has no bulk enqueue

    def __init__(self, backend: str, url: str, state: str) -> None:
        super().__init__(backend, url, state)
        if backend == "sqlite":
            self.huey: Any = SqliteHuey("bench", filename=url)
        else:
            from huey.contrib.sql_huey import SqlHuey

            self.huey = SqlHuey("bench", database=url)

        @self.huey.task()
        def noop() -> None:
            return None

        self.task = noop
        self.enqueued: dict[str, float] = {}
        self.progress = Path(state) / "huey-progress"
        self.times = Path(state) / "huey-times.json"

    def setup(self) -> None:
        self.huey.pending_count()  # creates the tables

    def enqueue(self) -> None:
        at = time.time()
        self.enqueued[self.task().id] = at

    def run_worker(self, burst: bool, expect: int) -> None:
        starts: dict[str, list[float]] = {}
        ends: dict[str, float] = {}

        @self.huey.signal(signals.SIGNAL_EXECUTING)
        def executing(signal_name: str, task: Any) -> None:
            starts.setdefault(task.id, []).append(time.time())

        @self.huey.signal(signals.SIGNAL_COMPLETE)
        def complete(signal_name: str, task: Any) -> None:
            ends[task.id] = time.time()

        consumer = self.huey.create_consumer(workers=self.worker_concurrency, worker_type="thread")

        def watch() -> None:
            seen = -1
            while True:
                count = len(ends)
                if count != seen:
                    self.progress.write_text(str(count))
                    seen = count
                if burst and count >= expect:
                    os.kill(os.getpid(), signal.SIGINT)
                    return
                time.sleep(0.02)

        threading.Thread(target=watch, daemon=True).start()
        try:
            consumer.run()
        finally:
            self.times.write_text(json.dumps({"starts": starts, "ends": ends}))

    def done(self) -> int:
        try:
            return int(self.progress.read_text() or 0)
        except (OSError, ValueError):
            return 0

    def records(self, expected: int) -> list[Record]:
        seen = json.loads(self.times.read_text())
        starts, ends = seen["starts"], seen["ends"]
        left = self.huey.pending_count()
        if left:
            raise RuntimeError(f"{left} tasks still queued")
        exactly_once(len(starts), sum(len(s) for s in starts.values()), len(ends), expected)
        return [
            Record(self.enqueued.get(key, at[0]), at[0], ends[key]) for key, at in starts.items()
        ]
