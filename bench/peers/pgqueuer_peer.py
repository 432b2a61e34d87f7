"""pgqueuer: an async no-op entrypoint on asyncpg, durable tables, pgqueuer's defaults.

The entrypoint keeps pgqueuer's default ``concurrency_limit=0`` (no limit: the
worker runs every job of each batch of 10 at once on its event loop), not the
benchmark's "5 concurrent tasks". pgqueuer's ``concurrency_limit=5`` is a
database-enforced gate whose seats come back only when the buffered completions
are written: on 2026-11-29 it drained 46 tasks/s here (quick size) against
917/s for the default in the same run, a figure no pgqueuer user would accept.
The comparison takes pgqueuer at its fastest; it is the stricter one for us.

Enqueue: ``Queries.enqueue("noop", None)``; bulk: one ``Queries.enqueue`` call
with lists. Drain: ``PgQueuer.run(mode=QueueExecutionMode.drain)``; other
settings are pgqueuer's defaults (batch size 10, LISTEN/NOTIFY). Times come
from ``pgqueuer_log`` (``queued``, ``picked``, ``successful``; database clock;
pgqueuer writes the ``successful`` rows in small buffered batches).
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import asyncpg
from pgqueuer import AsyncpgDriver, PgQueuer, Queries
from pgqueuer.types import QueueExecutionMode

from .base import Peer, Record, exactly_once

_RECORDS = """
SELECT job_id,
       extract(epoch FROM min(created) FILTER (WHERE status = 'queued')),
       extract(epoch FROM min(created) FILTER (WHERE status = 'picked')),
       extract(epoch FROM max(created) FILTER (WHERE status = 'successful')),
       count(*) FILTER (WHERE status = 'picked'),
       count(*) FILTER (WHERE status = 'successful')
  FROM pgqueuer_log GROUP BY job_id
"""


class Pgqueuer(Peer):
    name = "pgqueuer"

    def __init__(self, backend: str, url: str, state: str) -> None:
        super().__init__(backend, url, state)
        self.runner = asyncio.Runner()
        self.conn: Any = None

    def _queries(self) -> Queries:
        if self.conn is None:
            self.conn = self.runner.run(asyncpg.connect(self.url))
        return Queries(AsyncpgDriver(self.conn))

    def setup(self) -> None:
        self.runner.run(self._queries().install())

    def enqueue(self) -> None:
        self.runner.run(self._queries().enqueue("noop", None))

    def enqueue_bulk(self, count: int) -> None:
        self.runner.run(self._queries().enqueue(["noop"] * count, [None] * count, [0] * count))

    def run_worker(self, burst: bool, expect: int) -> None:
        asyncio.run(self._work(burst))

    async def _work(self, burst: bool) -> None:
        conn = await asyncpg.connect(self.url)
        pgq = PgQueuer.from_asyncpg_connection(conn)

        @pgq.entrypoint("noop", concurrency_limit=0)
        async def noop(job: object) -> None:
            return None

        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, pgq.shutdown.set)
        mode = QueueExecutionMode.drain if burst else QueueExecutionMode.continuous
        await pgq.run(mode=mode)
        await conn.close()

    def _sql(self, query: str) -> list[Any]:
        async def fetch() -> list[Any]:
            conn = await asyncpg.connect(self.url)
            try:
                return list(await conn.fetch(query))
            finally:
                await conn.close()

        return self.runner.run(fetch())

    def done(self) -> int:
        rows = self._sql("SELECT count(*) FROM pgqueuer_log WHERE status = 'successful'")
        return int(rows[0][0])

    def records(self, expected: int) -> list[Record]:
        rows = self._sql(_RECORDS)
        left = self._sql("SELECT count(*) FROM pgqueuer")[0][0]
        if left:
            raise RuntimeError(f"{left} jobs still in the queue table")
        ok = [r for r in rows if r[5] == 1 and r[1] is not None and r[2] is not None]
        exactly_once(len(rows), sum(int(r[4]) for r in rows), len(ok), expected)
        return [Record(float(r[1]), float(r[2]), float(r[3])) for r in ok]

    def analyze(self) -> None:
        self._sql("ANALYZE pgqueuer")

    def close(self) -> None:
        if self.conn is not None:
            self.runner.run(self.conn.close())
            self.conn = None
        self.runner.close()
