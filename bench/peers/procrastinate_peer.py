"""procrastinate: an async no-op task, ``App.run_worker(concurrency=5)``, LISTEN/NOTIFY on.

Enqueue: ``task.defer()`` on a synchronously opened app (its sync psycopg
connector); bulk: ``task.batch_defer(...)``. Drain: ``wait=False`` (exit when
caught up). Jobs are kept (``delete_jobs="never"``) so the table can prove
exactly-once; times are procrastinate's own events (database clock).
"""

from __future__ import annotations

import procrastinate
import psycopg

from .base import Peer, Record, exactly_once

_RECORDS = """
SELECT j.status::text,
       extract(epoch FROM min(e.at) FILTER (WHERE e.type = 'deferred')),
       extract(epoch FROM min(e.at) FILTER (WHERE e.type = 'started')),
       extract(epoch FROM max(e.at) FILTER (WHERE e.type = 'succeeded')),
       count(*) FILTER (WHERE e.type = 'started')
  FROM procrastinate_jobs j JOIN procrastinate_events e ON e.job_id = j.id
 GROUP BY j.id, j.status
"""


class Procrastinate(Peer):
    name = "procrastinate"

    def __init__(self, backend: str, url: str, state: str) -> None:
        super().__init__(backend, url, state)
        self.app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))

        @self.app.task(name="noop")
        async def noop() -> None:
            return None

        self.task = noop
        self._open = False

    def _client(self) -> None:
        if not self._open:
            self.app.open()
            self._open = True

    def setup(self) -> None:
        self._client()
        self.app.schema_manager.apply_schema()

    def enqueue(self) -> None:
        self._client()
        self.task.defer()

    def enqueue_bulk(self, count: int) -> None:
        self._client()
        self.task.batch_defer(*({} for _ in range(count)))

    def run_worker(self, burst: bool, expect: int) -> None:
        self.app.run_worker(
            concurrency=self.worker_concurrency, wait=not burst, delete_jobs="never"
        )

    def _sql(self, query: str) -> list[tuple[object, ...]]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            cursor = conn.execute(query)
            return cursor.fetchall() if cursor.description else []

    def done(self) -> int:
        rows = self._sql("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'")
        return int(rows[0][0])  # type: ignore[call-overload]

    def records(self, expected: int) -> list[Record]:
        rows = self._sql(_RECORDS)
        ok = [r for r in rows if r[0] == "succeeded" and r[2] is not None and r[3] is not None]
        exactly_once(len(rows), sum(int(r[4]) for r in rows), len(ok), expected)  # type: ignore[call-overload]
        return [Record(float(r[1]), float(r[2]), float(r[3])) for r in ok]  # type: ignore[arg-type]

    def analyze(self) -> None:
        self._sql("ANALYZE procrastinate_jobs")
        self._sql("ANALYZE procrastinate_events")

    def close(self) -> None:
        if self._open:
            self.app.close()
            self._open = False
