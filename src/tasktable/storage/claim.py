"""The claim: one atomic statement (or transaction) per dialect.

Each claim moves up to ``limit`` due pending tasks to ``running`` in priority
(higher first), then id order, stamping the worker, a fresh claim token, and
``attempts + 1``. With ``alive_within``, the same statement also requires the
worker's row with a heartbeat at most that many seconds old (``{alive}``), so
a worker declared dead never claims under its old id, at no extra round trip.
The SQL is written out per dialect so it can be read and EXPLAINed as it runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, column, text

from .base import Capabilities
from .schema import task_table
from .types import UTCDateTime

_COLUMNS = ", ".join(c.name for c in task_table.c)
_NAMES = [c.name for c in task_table.c]
_ID_AT, _PRIORITY_AT = _NAMES.index("id"), _NAMES.index("priority")


def _claim_order(row: Sequence[Any]) -> tuple[int, int]:
    """The claim's order (priority DESC, id) for a whole row in table column order."""
    return (-row[_PRIORITY_AT], row[_ID_AT])


_PG_CLAIM = """
UPDATE tasktable_task
   SET status = 'running', worker = :worker, claim_token = :token,
       attempts = attempts + 1, executed_at = statement_timestamp(),
       heartbeat_at = statement_timestamp(), cancel_requested = false,
       progress_done = NULL, progress_total = NULL
 WHERE id IN (
       SELECT id FROM tasktable_task
        WHERE status = 'pending' AND run_at <= statement_timestamp() {queues} {alive}
        ORDER BY priority DESC, id
        LIMIT :limit
          FOR UPDATE SKIP LOCKED)
RETURNING {columns}
"""

# SQLite has no SKIP LOCKED and one writer at a time; what costs is finding the rows.
# The claim index is (status, queue, priority DESC, id): in one queue, the pending rows
# come in claim order, so each queue served gives its first ``limit`` due rows (an index
# range read that stops there) and the claim takes the first ``limit`` of those. A plain
# "ORDER BY priority DESC, id" over several queues reads and sorts every pending row of
# them: the whole backlog, on each claim. The queues ({levels}): those given
# (``_SQLITE_GIVEN``), or those with pending rows, found by a walk of the index
# (``_SQLITE_EVERY_QUEUE``, one seek per queue). Past ``_SQLITE_MAX_LEVELS`` queues the
# reads per queue would cost more than the sort: the plain form runs instead (each half
# of the UNION has a LIMIT of 0 unless it is the one to run: it reads no row).
_SQLITE_MAX_LEVELS = 32

_SQLITE_CLAIM = """
UPDATE tasktable_task
   SET status = 'running', worker = :worker, claim_token = :token,
       attempts = attempts + 1,
       executed_at = strftime('%Y-%m-%d %H:%M:%f000', 'now'),
       heartbeat_at = strftime('%Y-%m-%d %H:%M:%f000', 'now'),
       cancel_requested = 0, progress_done = NULL, progress_total = NULL
 WHERE id IN (
       WITH {levels}
       SELECT id FROM (
              SELECT c.id FROM levels AS l JOIN tasktable_task AS c ON c.id IN (
                     SELECT d.id FROM tasktable_task AS d
                      WHERE d.status = 'pending' AND d.queue = l.queue
                        AND d.run_at <= strftime('%Y-%m-%d %H:%M:%f000', 'now') {alive}
                      ORDER BY d.priority DESC, d.id
                      LIMIT :limit)
               ORDER BY c.priority DESC, c.id
               LIMIT CASE WHEN (SELECT COUNT(queue) FROM levels) <= {max_levels}
                          THEN :limit ELSE 0 END)
       UNION ALL
       SELECT id FROM (
              SELECT id FROM tasktable_task
               WHERE status = 'pending'
                 AND run_at <= strftime('%Y-%m-%d %H:%M:%f000', 'now') {queues} {alive}
               ORDER BY priority DESC, id
               LIMIT CASE WHEN (SELECT COUNT(queue) FROM levels) > {max_levels}
                          THEN :limit ELSE 0 END))
RETURNING {columns}
"""

_SQLITE_EVERY_QUEUE = """RECURSIVE levels(queue, n) AS (
            SELECT MIN(queue), 1 FROM tasktable_task WHERE status = 'pending'
            UNION ALL
            SELECT (SELECT MIN(q.queue) FROM tasktable_task AS q
                     WHERE q.status = 'pending' AND q.queue > l.queue), l.n + 1
              FROM levels AS l
             WHERE l.queue IS NOT NULL AND l.n <= {max_levels})"""

_SQLITE_GIVEN = "levels(queue) AS (SELECT DISTINCT column1 FROM (VALUES {marks}))"

# MariaDB/MySQL lock every row a filesort reads: "ORDER BY priority DESC, id ... FOR
# UPDATE SKIP LOCKED" locked all due rows, so a concurrent claim found them all locked and
# got nothing (burst workers then quit early). So the order comes from a plain read, and
# only those candidates are locked, by primary key, with no ORDER BY.
_PG_ALIVE = """
          AND EXISTS (SELECT 1 FROM tasktable_worker
                       WHERE id = :worker
                         AND heartbeat_at >= statement_timestamp() - make_interval(secs => :alive))"""

_SQLITE_ALIVE = """
          AND EXISTS (SELECT 1 FROM tasktable_worker
                       WHERE id = :worker
                         AND heartbeat_at >= strftime('%Y-%m-%d %H:%M:%f000', 'now', :alive))"""

_MYSQL_ALIVE = """
   AND EXISTS (SELECT 1 FROM tasktable_worker
                WHERE id = :worker
                  AND heartbeat_at >= UTC_TIMESTAMP(6) - INTERVAL :alive MICROSECOND)"""

_MYSQL_CANDIDATES = """
SELECT id, priority FROM tasktable_task
 WHERE status = 'pending' AND run_at <= UTC_TIMESTAMP(6) {queues} {alive} {after}
 ORDER BY priority DESC, id
 LIMIT :limit
"""

_MYSQL_AFTER = "AND (priority < :after_priority OR (priority = :after_priority AND id > :after_id))"

# The whole rows, as the claim leaves them once the UPDATE below has run: no re-read.
_MYSQL_LOCK = """
SELECT {columns}, UTC_TIMESTAMP(6) AS now_utc FROM tasktable_task
 WHERE id IN :ids AND status = 'pending' AND run_at <= UTC_TIMESTAMP(6)
   FOR UPDATE SKIP LOCKED
"""

#: Candidate windows read past rows other claims hold, before giving up for this round.
_MYSQL_MAX_WINDOWS = 20

_MYSQL_TAKE = """
UPDATE tasktable_task
   SET status = 'running', worker = :worker, claim_token = :token,
       attempts = attempts + 1, executed_at = :now, heartbeat_at = :now,
       cancel_requested = false, progress_done = NULL, progress_total = NULL
 WHERE id IN :ids
"""


def _statement(sql: str, queues: Sequence[str], alive: str = "", **extra: Any) -> Any:
    clause = "AND queue IN :queues" if queues else ""
    stmt = text(sql.format(queues=clause, columns=_COLUMNS, alive=alive, **extra))
    if queues:
        stmt = stmt.bindparams(bindparam("queues", expanding=True))
    return stmt


def pg_claim_sql(queues: bool, alive: bool) -> str:
    """PostgreSQL's claim statement as text (``hot.py`` makes it a CTE)."""
    return _PG_CLAIM.format(
        queues="AND queue IN :queues" if queues else "",
        columns=_COLUMNS,
        alive=_PG_ALIVE if alive else "",
    )


class Claimer:
    capabilities: Capabilities

    def claim(
        self,
        conn: Connection,
        worker: str,
        token: str,
        queues: Sequence[str],
        limit: int,
        alive_within: float | None = None,
    ) -> Sequence[Mapping[Any, Any]]:
        raise NotImplementedError


class ReturningClaimer(Claimer):
    """PostgreSQL (and SQLite, see :class:`SQLiteClaimer`): one ``UPDATE ... RETURNING``."""

    def __init__(self, sql: str, alive: str, capabilities: Capabilities) -> None:
        self.sql = sql
        self.alive = alive
        self.capabilities = capabilities
        self._cache: dict[tuple[bool, bool], Any] = {}

    def claim(
        self,
        conn: Connection,
        worker: str,
        token: str,
        queues: Sequence[str],
        limit: int,
        alive_within: float | None = None,
    ) -> Sequence[Mapping[Any, Any]]:
        key = (bool(queues), alive_within is not None)
        stmt = self._cache.get(key)
        if stmt is None:
            alive = self.alive if alive_within is not None else ""
            stmt = _statement(self.sql, queues, alive).columns(*task_table.c)
            self._cache[key] = stmt
        params = self.params(worker, token, queues, limit, alive_within)
        rows = conn.execute(stmt, params).mappings().all()
        return sorted(rows, key=lambda r: (-r["priority"], r["id"]))

    def params(
        self,
        worker: str,
        token: str,
        queues: Sequence[str],
        limit: int,
        alive_within: float | None,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"worker": worker, "token": token, "limit": limit}
        if queues:
            params["queues"] = list(queues)
        if alive_within is not None:
            params["alive"] = self._alive_param(alive_within)
        return params

    def _alive_param(self, seconds: float) -> Any:
        if self.capabilities.listen_notify:  # PostgreSQL: make_interval(secs => ...)
            return float(seconds)
        return f"-{seconds:.3f} seconds"  # SQLite: a strftime modifier


class SQLiteClaimer(ReturningClaimer):
    """SQLite: one ``UPDATE ... RETURNING`` that reads each queue's rows in index order
    (``_SQLITE_CLAIM``); the queues given become numbered parameters."""

    def __init__(self) -> None:
        super().__init__(
            _SQLITE_CLAIM,
            _SQLITE_ALIVE,
            Capabilities(
                skip_locked=False,
                update_returning=True,
                listen_notify=False,
                concurrent_writers=False,
                same_host_wakeup=True,
            ),
        )
        self._driver: dict[tuple[int, bool], str] = {}
        self._typed: dict[tuple[int, bool], Any] = {}

    def driver_sql(self, queues: int, alive: bool) -> str:
        """The claim's text for ``queues`` named queues (0: every queue)."""
        key = (queues, alive)
        sql = self._driver.get(key)
        if sql is None:
            names = [f":queue_{i}" for i in range(queues)]
            given = _SQLITE_GIVEN.format(marks=", ".join(f"({n})" for n in names))
            every = _SQLITE_EVERY_QUEUE.format(max_levels=_SQLITE_MAX_LEVELS)
            sql = self._driver[key] = self.sql.format(
                levels=given if queues else every,
                queues=f"AND queue IN ({', '.join(names)})" if queues else "",
                max_levels=_SQLITE_MAX_LEVELS,
                columns=_COLUMNS,
                alive=self.alive if alive else "",
            )
        return sql

    def params(
        self,
        worker: str,
        token: str,
        queues: Sequence[str],
        limit: int,
        alive_within: float | None,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"worker": worker, "token": token, "limit": limit}
        for i, name in enumerate(queues):
            params[f"queue_{i}"] = name
        if alive_within is not None:
            params["alive"] = self._alive_param(alive_within)
        return params

    def claim(
        self,
        conn: Connection,
        worker: str,
        token: str,
        queues: Sequence[str],
        limit: int,
        alive_within: float | None = None,
    ) -> Sequence[Mapping[Any, Any]]:
        """Through SQLAlchemy (typed rows by column name)."""
        key = (len(queues), alive_within is not None)
        stmt = self._typed.get(key)
        if stmt is None:
            stmt = self._typed[key] = text(self.driver_sql(*key)).columns(*task_table.c)
        params = self.params(worker, token, queues, limit, alive_within)
        rows = conn.execute(stmt, params).mappings().all()
        return sorted(rows, key=lambda r: (-r["priority"], r["id"]))

    def claim_values(
        self,
        conn: Connection,
        worker: str,
        token: str,
        queues: Sequence[str],
        limit: int,
        alive_within: float | None = None,
    ) -> list[Sequence[Any]]:
        """:meth:`claim` as the driver's statement (``exec_driver_sql``: the same SQL,
        no SQLAlchemy compiling or row processing); rows in the claim's order as
        tuples, columns in table order (``rows.task_from_values``)."""
        sql = self.driver_sql(len(queues), alive_within is not None)
        params = self.params(worker, token, queues, limit, alive_within)
        rows: list[Sequence[Any]] = list(conn.exec_driver_sql(sql, params).all())
        rows.sort(key=_claim_order)
        return rows


class MySQLClaimer(Claimer):
    """MariaDB/MySQL: ``SELECT ... FOR UPDATE SKIP LOCKED`` then ``UPDATE``, one transaction."""

    capabilities = Capabilities(
        skip_locked=True, update_returning=False, listen_notify=False, concurrent_writers=True
    )

    def claim(
        self,
        conn: Connection,
        worker: str,
        token: str,
        queues: Sequence[str],
        limit: int,
        alive_within: float | None = None,
    ) -> Sequence[Mapping[Any, Any]]:
        picked = self._lock_due(conn, queues, limit, worker, alive_within)
        if not picked:
            return []
        now = picked[0]["now_utc"]
        take = text(_MYSQL_TAKE).bindparams(
            bindparam("ids", expanding=True), bindparam("now", type_=UTCDateTime())
        )
        ids = [row["id"] for row in picked]
        conn.execute(take, {"worker": worker, "token": token, "now": now, "ids": ids})
        claimed = {
            "status": "running",
            "worker": worker,
            "claim_token": token,
            "executed_at": now,
            "heartbeat_at": now,
            "cancel_requested": False,
            "progress_done": None,
            "progress_total": None,
        }
        return [{**row, **claimed, "attempts": row["attempts"] + 1} for row in picked]

    def _lock_due(
        self,
        conn: Connection,
        queues: Sequence[str],
        limit: int,
        worker: str,
        alive_within: float | None,
    ) -> list[Any]:
        """Lock up to ``limit`` due rows in priority then id order, skipping rows that
        other claims hold; whole rows, with the database's ``now_utc``."""
        lock = (
            text(_MYSQL_LOCK.format(columns=_COLUMNS))
            .bindparams(bindparam("ids", expanding=True))
            .columns(*task_table.c, column("now_utc", UTCDateTime()))
        )
        alive = _MYSQL_ALIVE if alive_within is not None else ""
        picked: list[Any] = []
        after: tuple[int, int] | None = None
        for _ in range(_MYSQL_MAX_WINDOWS):
            want = limit - len(picked)
            params: dict[str, Any] = {"limit": want}
            if queues:
                params["queues"] = list(queues)
            if alive_within is not None:
                params["worker"] = worker
                params["alive"] = round(alive_within * 1_000_000)
            if after is not None:
                params["after_priority"], params["after_id"] = after
            sql = _MYSQL_CANDIDATES.replace("{after}", _MYSQL_AFTER if after else "")
            candidates = conn.execute(_statement(sql, queues, alive), params).all()
            if not candidates:
                break
            locked = conn.execute(lock, {"ids": [c[0] for c in candidates]}).mappings().all()
            picked += sorted(locked, key=lambda r: (-r["priority"], r["id"]))
            if len(picked) >= limit or len(candidates) < want:
                break
            after = (int(candidates[-1][1]), int(candidates[-1][0]))
        return picked


def claimer_for(dialect_name: str) -> Claimer:
    if dialect_name == "postgresql":
        return ReturningClaimer(
            _PG_CLAIM,
            _PG_ALIVE,
            Capabilities(
                skip_locked=True, update_returning=True, listen_notify=True, concurrent_writers=True
            ),
        )
    if dialect_name in ("mysql", "mariadb"):
        return MySQLClaimer()
    return SQLiteClaimer()
