"""The worker's hot path: final outcomes and the next claim in as few round trips as
each database allows.

A worker that keeps its slots busy writes outcomes and claims all the time.
Each of those is one atomic step, and the step costs what the database
charges per round trip and per commit, so the two are written together:

- PostgreSQL: one statement. The final outcomes are an ``UPDATE ... FROM
  unnest(...)`` (each row fenced by its own claim token), the claim the usual
  ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING``,
  both as data-modifying CTEs of one statement, sent in autocommit: one round
  trip and one commit for the whole batch, where a transaction would add a
  ``BEGIN`` and a ``COMMIT`` round trip.
- SQLite: one transaction (``BEGIN IMMEDIATE``) with one ``UPDATE ... FROM``
  over ``json_each`` for the outcomes, then the claim: one commit.
- MariaDB/MySQL: one transaction: the rows still ours locked (``SELECT ...
  FOR UPDATE``), their outcomes in one ``UPDATE`` joined to ``JSON_TABLE``,
  then the claim's statements: one commit.

The rows a write updated are the outcomes that were still ours; any other
is reported as a lost lease (False), as :meth:`Storage.finish_many` does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, Connection, Dialect, bindparam, text
from sqlalchemy.types import BigInteger

from ..core.task import Task
from .base import Outcome
from .claim import pg_claim_sql
from .rows import action_link_json, messages_json
from .schema import task_table

#: The columns an outcome writes, as arrays (PostgreSQL) or JSON array items (SQLite).
FINISH_KEYS = ("status", "messages", "error", "action_link", "progress_done", "progress_total")

_PG_FINISH = """
UPDATE tasktable_task AS t
   SET status = v.status, messages = v.messages, error = v.error,
       action_link = v.action_link, progress_done = v.progress_done,
       progress_total = v.progress_total, finished_at = statement_timestamp(),
       active_key = NULL, claim_token = NULL
  FROM unnest(CAST(:ids AS bigint[]), CAST(:tokens AS text[]), CAST(:status AS text[]),
              CAST(:messages AS text[]), CAST(:error AS text[]), CAST(:action_link AS text[]),
              CAST(:progress_done AS bigint[]), CAST(:progress_total AS bigint[]))
       AS v(id, token, status, messages, error, action_link, progress_done, progress_total)
 WHERE t.id = v.id AND t.claim_token = v.token AND t.status = 'running'
RETURNING t.id
"""

#: Final outcomes of several runs in one statement, each row fenced by its claim token.
PG_FINISH_MANY = text(_PG_FINISH)

#: The outcomes and the next claim in one statement. The claim cannot take a row the
#: first CTE finishes (those are running, not pending); ``finished_ids`` comes back on
#: every row, and on a lone row of NULLs when nothing was claimed.
_PG_FINISH_AND_CLAIM = """
WITH finished AS ({finish}),
     claimed AS ({claim})
SELECT (SELECT array_agg(id) FROM finished) AS finished_ids, claimed.*
  FROM (SELECT 1) AS one LEFT JOIN claimed ON true
"""

#: SQLite: the outcomes arrive as one JSON array of arrays, in FINISH_KEYS order after
#: id and token (``json_each`` is SQLite's ``unnest``).
SQLITE_FINISH_SQL = """
WITH v AS (
     SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS token,
            json_extract(value, '$[2]') AS status, json_extract(value, '$[3]') AS messages,
            json_extract(value, '$[4]') AS error, json_extract(value, '$[5]') AS action_link,
            json_extract(value, '$[6]') AS progress_done,
            json_extract(value, '$[7]') AS progress_total
       FROM json_each(:outcomes))
UPDATE tasktable_task AS t
   SET status = v.status, messages = v.messages, error = v.error,
       action_link = v.action_link, progress_done = v.progress_done,
       progress_total = v.progress_total,
       finished_at = strftime('%Y-%m-%d %H:%M:%f000', 'now'),
       active_key = NULL, claim_token = NULL
  FROM v
 WHERE t.id = v.id AND t.claim_token = v.token AND t.status = 'running'
RETURNING id
"""
SQLITE_FINISH_MANY = text(SQLITE_FINISH_SQL)


def final_values(outcome: Outcome) -> tuple[Any, ...]:
    """The columns a final outcome writes, in FINISH_KEYS order."""
    progress = outcome.progress
    error = outcome.error
    messages = outcome.messages
    link = outcome.action_link
    return (
        outcome.status.value,
        messages_json(messages) if messages else "[]",
        # PostgreSQL text cannot hold NUL; a traceback quoting binary data may.
        error.replace("\x00", "\\x00") if error else error,
        action_link_json(link) if link is not None else None,
        progress.done if progress else None,
        progress.total if progress else None,
    )


def pg_finish_params(items: Sequence[tuple[Task, Outcome]]) -> dict[str, Any]:
    columns = list(zip(*(final_values(o) for _, o in items), strict=True))
    return {
        "ids": [t.id for t, _ in items],
        "tokens": [t.claim_token for t, _ in items],
        **{key: list(values) for key, values in zip(FINISH_KEYS, columns, strict=True)},
    }


def json_finish_params(items: Sequence[tuple[Task, Outcome]]) -> dict[str, Any]:
    rows = [[t.id, t.claim_token, *final_values(o)] for t, o in items]
    return {"outcomes": json.dumps(rows, ensure_ascii=False, separators=(",", ":"))}


class PGFinishAndClaim:
    """The one-statement form, compiled once per (queues?, alive?) shape.

    The worker sends it on the driver's connection (``driver_sql`` and
    ``rows``): at tens of rows a step, SQLAlchemy's statement and row
    processing was a third of the claim loop's CPU. Elsewhere (a storage on a
    borrowed connection) it goes through SQLAlchemy (``statement``)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[bool, bool], Any] = {}
        self._driver: dict[tuple[bool, bool, str], str] = {}

    def statement(self, queues: bool, alive: bool) -> Any:
        stmt = self._cache.get((queues, alive))
        if stmt is None:
            sql = _PG_FINISH_AND_CLAIM.format(
                finish=_PG_FINISH.strip(),
                # queues as one array parameter: the same text for SQLAlchemy and psycopg.
                claim=pg_claim_sql(queues, alive)
                .strip()
                .replace("queue IN :queues", "queue = ANY(CAST(:queues AS text[]))"),
            )
            from sqlalchemy.dialects.postgresql import ARRAY  # here: see storage/types.py

            stmt = text(sql).columns(Column("finished_ids", ARRAY(BigInteger())), *task_table.c)
            self._cache[(queues, alive)] = stmt
        return stmt

    def driver_sql(self, dialect: Dialect, queues: bool, alive: bool) -> str:
        key = (queues, alive, dialect.driver)
        sql = self._driver.get(key)
        if sql is None:
            sql = self._driver[key] = str(self.statement(queues, alive).compile(dialect=dialect))
        return sql

    @staticmethod
    def params(items: Sequence[tuple[Task, Outcome]], claim: dict[str, Any]) -> dict[str, Any]:
        return {**pg_finish_params(items), **claim}

    @staticmethod
    def values(raw: Sequence[Sequence[Any]]) -> tuple[set[int], list[Sequence[Any]]]:
        """(ids of the outcomes written, claimed rows as the driver's values in table
        column order, for ``rows.task_from_values``) from the driver's rows."""
        finished = {int(i) for i in (raw[0][0] or ())} if raw else set()
        return finished, [row[1:] for row in raw if row[1] is not None]

    def run(
        self,
        conn: Connection,
        items: Sequence[tuple[Task, Outcome]],
        claim_params: dict[str, Any],
        *,
        queues: bool,
        alive: bool,
    ) -> tuple[set[int], list[Any]]:
        """Through SQLAlchemy: (ids of the outcomes written, claimed rows)."""
        rows = conn.execute(self.statement(queues, alive), self.params(items, claim_params))
        found = rows.mappings().all()
        finished = {int(i) for i in (found[0]["finished_ids"] or ())} if found else set()
        return finished, [r for r in found if r["id"] is not None]


#: MariaDB/MySQL (no UPDATE ... RETURNING): which of the runs are still ours, locked...
MYSQL_OURS = text(
    """
SELECT id FROM tasktable_task
 WHERE (id, claim_token) IN :pairs AND status = 'running'
   FOR UPDATE
"""
).bindparams(bindparam("pairs", expanding=True))

#: ...then their outcomes in one UPDATE, joined to the batch as rows (JSON_TABLE is
#: MariaDB's and MySQL's ``unnest``).
MYSQL_FINISH_MANY = text(
    """
UPDATE tasktable_task AS t
  JOIN JSON_TABLE(:outcomes, '$[*]' COLUMNS (
         id BIGINT PATH '$[0]',
         status VARCHAR(16) PATH '$[2]',
         messages LONGTEXT PATH '$[3]',
         error LONGTEXT PATH '$[4]',
         action_link TEXT PATH '$[5]',
         progress_done BIGINT PATH '$[6]',
         progress_total BIGINT PATH '$[7]')) AS v ON v.id = t.id
   SET t.status = v.status, t.messages = v.messages, t.error = v.error,
       t.action_link = v.action_link, t.progress_done = v.progress_done,
       t.progress_total = v.progress_total, t.finished_at = UTC_TIMESTAMP(6),
       t.active_key = NULL, t.claim_token = NULL
 WHERE t.id IN :ours
"""
).bindparams(bindparam("ours", expanding=True))


def mysql_finish(conn: Connection, items: Sequence[tuple[Task, Outcome]]) -> set[int]:
    """Final outcomes on MariaDB/MySQL in two statements, whatever their number."""
    pairs = [(t.id, t.claim_token) for t, _ in items]
    ours = [int(i) for i in conn.execute(MYSQL_OURS, {"pairs": pairs}).scalars()]
    if ours:
        conn.execute(MYSQL_FINISH_MANY, {**json_finish_params(items), "ours": ours})
    return set(ours)
