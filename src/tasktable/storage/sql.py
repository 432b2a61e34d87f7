"""SQLStorage: the :class:`~tasktable.storage.base.Storage` protocol on SQLAlchemy Core.

One implementation serves SQLite, PostgreSQL and MariaDB; what differs per
dialect (the claim, "now", column types) lives in ``claim.py`` and ``types.py``.
Every state change is one conditional write: a status move names the status
it moves from, and a worker's writes name its claim token.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from json.scanner import make_scanner
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Connection,
    and_,
    bindparam,
    case,
    column,
    delete,
    false,
    func,
    insert,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy import exc as sa_exc

from ..core.status import FINAL_STATUSES, RETRYABLE, TaskStatus
from ..core.task import NewTask, Task, TaskFile
from ..errors import InvalidInput, InvalidTransition, TaskNotFound
from .base import Page, Sort, Stats, TaskFilter, WorkerInfo
from .bulk import builder, json_texts, uniform
from .engine import wrap_db_errors
from .migrate import check_schema, migrate
from .plumbing import SQLBase
from .rows import (
    check_sort,
    decode_cursor,
    encode_cursor,
    filter_clause,
    keyset_clause,
    task_from_row,
)
from .schema import file_table, periodic_table, task_table, worker_table
from .types import UTCDateTime, utcnow
from .wakeup import CHANNEL, NOTIFY_SQL, WakeFn, listen_postgres, listen_sqlite
from .worker_side import WorkerSide

T = task_table.c
F = file_table.c
W = worker_table.c
P = periodic_table.c
_RUNNING = TaskStatus.RUNNING.value


class _now(utcnow):
    """:class:`utcnow` without an offset, cacheable: a statement holding it is compiled
    once, not at every execution (``utcnow`` itself opts out of the statement cache)."""

    inherit_cache = True


#: created_at and a missing run_at come from the database clock; what every new row
#: starts with is written in the statement (fewer parameters to bind per row).
_INSERT = insert(task_table).values(
    created_at=_now(),
    run_at=func.coalesce(bindparam("run_at_in", type_=UTCDateTime()), _now()),
    status=literal_column(f"'{TaskStatus.PENDING.value}'"),
    messages=literal_column("'[]'"),
    attempts=literal_column("0"),
    cancel_requested=false(),
    lost_count=literal_column("0"),
)
#: What the database decides about a new row; the rest is what was sent. ``timeout``
#: too: MariaDB's FLOAT keeps it in single precision.
_DECIDED = (T.id, T.created_at, T.run_at, T.timeout)
#: No ``sort_by_parameter_order``: on SQLite that means a statement per row; ids
#: follow the VALUES order of each statement instead, and the rows are sorted by id.
_INSERT_RETURNING = _INSERT.returning(*_DECIDED)
_PENDING = TaskStatus.PENDING.value
_PG_COLUMNS = """name, handler, args, status, messages, created_at, queue, priority, run_at,
    attempts, max_attempts, timeout, unique_key, active_key, cancel_requested, lost_count,
    rerun_on_loss"""
#: PostgreSQL: the wake-up folded into the INSERT: ``pg_notify`` for the due rows
#: only (run_at not after created_at), sent at commit, once per queue. Only id and
#: created_at come back: the rest is stored exactly as sent (see ``_pg_decided``).
_PG_RETURNING = f"""RETURNING id, created_at,
    (CASE WHEN run_at <= created_at THEN pg_notify('{CHANNEL}', queue) IS NULL END) AS woke"""
_PG_RESULT = (T.id, T.created_at, column("woke", Boolean()))
#: PostgreSQL, one task (``enqueue``): plain values.
_PG_INSERT_ONE = text(
    f"""INSERT INTO {task_table.name} ({_PG_COLUMNS})
VALUES (:name, :handler, :args, '{_PENDING}', '[]', statement_timestamp(), :queue,
    :priority, coalesce(CAST(:run_at AS timestamptz), statement_timestamp()), 0,
    :max_attempts, :timeout, :unique_key, :unique_key, false, 0, :rerun_on_loss)
{_PG_RETURNING}"""
).columns(*_PG_RESULT)
#: PostgreSQL, many tasks: one statement whose text does not grow with them, each
#: column a JSON array (a list per column, encoded in C: a third of the client's work
#: of an object per row). Ids follow the order given (ORDER BY n, as SQLAlchemy's own
#: sorted bulk insert on PostgreSQL relies on too). One row comes back, as from
#: ``_PG_INSERT_UNIFORM``; each queue with due tasks is woken once.
_PG_MANY_COLUMNS = (
    "name",
    "handler",
    "args",
    "queue",
    "priority",
    "run_at",
    "max_attempts",
    "timeout",
    "unique_key",
    "rerun_on_loss",
)
_PG_INSERT_MANY = text(
    f"""WITH ins AS (INSERT INTO {task_table.name} ({_PG_COLUMNS})
SELECT t.name, t.handler, t.args, '{_PENDING}', '[]', statement_timestamp(),
    t.queue, CAST(t.priority AS integer),
    coalesce(CAST(t.run_at AS timestamptz), statement_timestamp()), 0,
    CAST(t.max_attempts AS integer), CAST(t.timeout AS float8), t.unique_key, t.unique_key,
    false, 0, CAST(t.rerun_on_loss AS boolean)
FROM ROWS FROM ({
        ", ".join(f"json_array_elements_text(CAST(:{c} AS json))" for c in _PG_MANY_COLUMNS)
    })
    WITH ORDINALITY AS t({", ".join(_PG_MANY_COLUMNS)}, n)
ORDER BY t.n
RETURNING id, created_at, run_at, queue),
woke AS (SELECT count(pg_notify('{CHANNEL}', due.queue)) AS n
    FROM (SELECT DISTINCT queue FROM ins WHERE run_at <= created_at) AS due)
SELECT array_agg(id ORDER BY id) AS ids, min(created_at) AS created_at,
    (SELECT n FROM woke) AS woke
FROM ins"""
).columns(column("ids", ARRAY(BigInteger())), T.created_at, column("woke", BigInteger()))
#: PostgreSQL, many tasks that differ only in their args (``bulk.uniform``): the shared
#: values bound once, the args texts in one JSON array of strings. One row comes back:
#: the ids in order, the statement's time (every row's created_at), and the wake-up of
#: the one queue when the tasks are due (reading a row per task was a sixth of a batch).
_PG_INSERT_UNIFORM = text(
    f"""WITH ins AS (INSERT INTO {task_table.name} ({_PG_COLUMNS})
SELECT CAST(:name AS text), CAST(:handler AS text), a.args, '{_PENDING}', '[]',
    statement_timestamp(), CAST(:queue AS text), CAST(:priority AS integer),
    coalesce(CAST(:run_at AS timestamptz), statement_timestamp()), 0,
    CAST(:max_attempts AS integer), CAST(:timeout AS float8), NULL, NULL, false, 0,
    CAST(:rerun_on_loss AS boolean)
FROM json_array_elements_text(CAST(:args AS json)) WITH ORDINALITY AS a(args, n)
ORDER BY a.n
RETURNING id, created_at, run_at)
SELECT array_agg(id ORDER BY id) AS ids, min(created_at) AS created_at,
    (CASE WHEN bool_or(run_at <= created_at)
        THEN pg_notify('{CHANNEL}', CAST(:queue AS text)) IS NULL END) AS woke
FROM ins"""
).columns(column("ids", ARRAY(BigInteger())), T.created_at, column("woke", Boolean()))


#: SQLite, one task (``enqueue``): positional values; created_at and a missing
#: run_at by the database clock ({now}: ``_now`` compiled), as ``_INSERT`` has them.
_SQLITE_INSERT_ONE = f"""INSERT INTO {task_table.name} ({_PG_COLUMNS})
VALUES (?, ?, ?, '{_PENDING}', '[]', {{now}}, ?, ?, coalesce(?, {{now}}), 0, ?, ?, ?, ?, 0, 0, ?)
RETURNING id, created_at, run_at, timeout"""


#: SQLite and MariaDB, many tasks that differ only in their args (``bulk.uniform``): the
#: shared values bound once, the args texts read from one JSON array of strings ({p}: the
#: driver's placeholder, {now}: ``_now`` compiled, {rows}: ``_JSON_ROWS``).
_ROWS_UNIFORM = f"""INSERT INTO {task_table.name} ({_PG_COLUMNS})
SELECT {{p}}, {{p}}, j.args, '{_PENDING}', '[]', {{now}}, {{p}}, {{p}}, coalesce({{p}}, {{now}}), 0,
    {{p}}, {{p}}, NULL, NULL, 0, 0, {{p}}
FROM {{rows}}
ORDER BY j.n
RETURNING {{returning}}"""
#: The elements of a JSON array of strings, as rows (n: position, args: the string).
_JSON_ROWS = {
    "sqlite": "(SELECT key AS n, value AS args FROM json_each({p})) AS j",
    "mariadb": """JSON_TABLE({p}, '$[*]' COLUMNS (n FOR ORDINALITY,
    args LONGTEXT CHARACTER SET utf8mb4 PATH '$')) AS j""",
}
_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}
#: MariaDB: what the rows of one ``_ROWS_UNIFORM`` share (its time, the options sent;
#: PyMySQL reading them on each row was a third of a batch).
_SHARED_TIMES = f"SELECT created_at, run_at, timeout FROM {task_table.name} WHERE id = %s"
#: SQLite and MariaDB: at most this many characters of args in one statement (MariaDB's
#: max_allowed_packet is 16 MB by default; a character may take 4 bytes).
_CHUNK_CHARS = 1_000_000

_first = itemgetter(0)
#: json.dumps(value, ensure_ascii=False, separators=(",", ":")) without building an
#: encoder at every call.
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
#: json.loads without its checks, for JSON text this module wrote itself.
_decode: Any = make_scanner(json.JSONDecoder())  # type: ignore[arg-type]
#: The driver's SQL text of a statement run outside SQLAlchemy (``_insert_autocommit``).
_DRIVER_SQL: dict[tuple[Any, str], str] = {}
_SQLITE_TIMES: dict[Any, tuple[Any, Any]] = {}


def _args_json(args: Any) -> str:
    return _encode(args)


#: Task(...) of all its fields' values, in the dataclass's order (``bulk.builder``).
_task = builder(Task, [f.name for f in dataclasses.fields(Task)])


def _stored(tasks: Sequence[NewTask], texts: Sequence[str], rows: Sequence[Any]) -> list[Task]:
    """The tasks as ``get`` reads them back: what was sent, and what the database
    decided (``_DECIDED``, in the order given); ``task_from_row`` of whole rows gives
    the same, more slowly (a bulk insert spent a fifth of its time there)."""
    decode, pending, task = _decode, TaskStatus.PENDING, _task
    return [
        task(
            int(task_id),
            new.name,
            new.handler,
            decode(args, 0)[0],
            pending,
            (),
            created_at,
            None,
            None,
            None,
            new.queue,
            int(new.priority),
            run_at,
            0,
            int(new.max_attempts),
            timeout,
            None,
            None,
            None,
            None,
            new.unique_key,
            False,
            bool(new.rerun_on_loss),
            (),
            None,
        )
        for new, args, (task_id, created_at, run_at, timeout) in zip(
            tasks, texts, rows, strict=True
        )
    ]


def _utc(value: datetime | None) -> datetime | None:
    """As :class:`UTCDateTime` binds it on PostgreSQL: a naive time is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _pg_values(task: NewTask, args: str) -> dict[str, Any]:
    """The parameters of ``_PG_INSERT_ONE``."""
    return {
        "name": task.name,
        "handler": task.handler,
        "args": args,
        "queue": task.queue,
        "priority": int(task.priority),
        "run_at": _utc(task.run_at),
        "max_attempts": int(task.max_attempts),
        "timeout": None if task.timeout is None else float(task.timeout),
        "unique_key": task.unique_key,
        "rerun_on_loss": bool(task.rerun_on_loss),
    }


def _iso(value: datetime) -> str:
    """ISO text with the offset (a naive time is UTC, as :class:`UTCDateTime` binds it)."""
    utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return utc.isoformat()


def _pg_rows_of(statement: Any, rows: list[Any]) -> list[Any]:
    """The (id, created_at, ...) rows of ``statement``'s result, in id order."""
    if statement is not _PG_INSERT_ONE:  # one row: the ids, the statement's time
        [(ids, created_at, _)] = rows
        return [(task_id, created_at) for task_id in ids]
    rows.sort(key=_first)  # ids were taken in the order given
    return rows


def _pg_many(tasks: Sequence[NewTask], texts: list[str]) -> tuple[Any, dict[str, Any]]:
    """The statement inserting ``tasks`` (more than one), and its parameters."""
    if not uniform(tasks):
        return _PG_INSERT_MANY, _pg_rows(tasks, texts)
    params = _pg_values(tasks[0], "")
    del params["args"], params["unique_key"]
    params["args"] = json_texts(texts)
    return _PG_INSERT_UNIFORM, params


def _pg_rows(tasks: Sequence[NewTask], args: list[str]) -> dict[str, str]:
    """The parameters of ``_PG_INSERT_MANY``: a JSON array per column (a float's repr
    and an ISO time read back exactly)."""
    encode = _encode
    return {
        "name": encode([t.name for t in tasks]),
        "handler": encode([t.handler for t in tasks]),
        "args": encode(args),
        "queue": encode([t.queue for t in tasks]),
        "priority": encode([int(t.priority) for t in tasks]),
        "run_at": encode([None if t.run_at is None else _iso(t.run_at) for t in tasks]),
        "max_attempts": encode([int(t.max_attempts) for t in tasks]),
        "timeout": encode([None if t.timeout is None else float(t.timeout) for t in tasks]),
        "unique_key": encode([t.unique_key for t in tasks]),
        "rerun_on_loss": encode([bool(t.rerun_on_loss) for t in tasks]),
    }


def _chunks(texts: Sequence[str]) -> list[tuple[int, int]]:
    """``texts`` cut into (start, end) runs of at most ``_CHUNK_CHARS`` characters (a
    longer text alone)."""
    runs: list[tuple[int, int]] = []
    start, size = 0, 0
    for index, args in enumerate(texts):
        if size + len(args) > _CHUNK_CHARS and index > start:
            runs.append((start, index))
            start, size = index, 0
        size += len(args)
    runs.append((start, len(texts)))
    return runs


def _sqlite_times(dialect: Any) -> tuple[Any, Any]:
    """How :class:`UTCDateTime` writes a time to this database's driver (SQLite's,
    or MariaDB's), and reads one back."""
    found = _SQLITE_TIMES.get(dialect)
    if found is None:
        kind = UTCDateTime()
        found = _SQLITE_TIMES[dialect] = (
            kind.bind_processor(dialect),
            kind.result_processor(dialect, None),
        )
    return found


def _pg_decided(tasks: Sequence[NewTask], rows: Sequence[Any], to_utc: bool) -> list[Any]:
    """``_DECIDED`` on PostgreSQL, from (id, created_at) rows in the order given: it
    keeps what it was sent exactly (a float8, a timestamptz to the microsecond)."""
    decided = []
    # created_at is the statement's time: the same on every row of one insert
    seen: Any = None
    at: Any = None
    for new, (task_id, created_at, *_) in zip(tasks, rows, strict=True):
        if created_at != seen:
            seen = created_at
            # the driver's own rows are in the session's time zone
            at = created_at.astimezone(UTC) if to_utc else created_at
        run_at = at if new.run_at is None else _utc(new.run_at)
        timeout = None if new.timeout is None else float(new.timeout)
        decided.append((task_id, at, run_at, timeout))
    return decided


class SQLStorage(WorkerSide):
    """Tasks in a SQL database reached through one SQLAlchemy engine (two on servers)."""

    # -- schema -----------------------------------------------------------------
    def migrate(self) -> list[int]:
        with wrap_db_errors(self.url, "migrate"):
            return migrate(self.engine)

    def check_schema(self) -> None:
        with wrap_db_errors(self.url, "connect to"):
            check_schema(self.engine, self.safe_url)

    # -- repository -------------------------------------------------------------
    def insert(
        self,
        tasks: Sequence[NewTask],
        *,
        connection: Any = None,
        args_json: Sequence[str | None] | None = None,
    ) -> list[Task]:
        """``args_json``: the args of each task as JSON text when the caller has it
        already (from validation; None: encode that task's args here)."""
        if not tasks:
            return []
        if args_json is None:
            texts = [_args_json(t.args) for t in tasks]
        else:
            texts = [
                _args_json(t.args) if a is None else a
                for t, a in zip(tasks, args_json, strict=True)
            ]
        if (
            connection is None
            # not when a subclass writes in a transaction of its own (Django's)
            and type(self)._write is SQLBase._write
            and all(t.unique_key is None for t in tasks)
        ):
            if self.capabilities.listen_notify:
                return self._insert_autocommit(tasks, texts)
            if self.dialect_name == "sqlite" and len(tasks) == 1:
                return [self._insert_sqlite_one(tasks[0], texts[0])]
            if (
                self.dialect_name == "sqlite"
                and self._json_rows_sql() is not None
                and uniform(tasks)
                and len(_chunks(texts)) == 1
            ):
                # one statement: all or nothing without a transaction of its own
                return self._insert_json_rows(None, tasks, texts)
        with self._write(connection) as conn:
            # In the order given, so that ids (and so the run order) follow it: runs of
            # plain tasks in one statement each, a task with a unique key on its own.
            # A new row comes back whole from its INSERT ... RETURNING (no re-read); only
            # a task found by its unique key is read.
            order: list[int] = []
            found: dict[int, Task] = {}
            plain: list[NewTask] = []
            plain_texts: list[str] = []
            for task, text in [*zip(tasks, texts, strict=True), (None, "")]:
                if (task is None or task.unique_key is not None) and plain:
                    for new in self._insert_plain(conn, plain, plain_texts):
                        found[new.id] = new
                        order.append(new.id)
                    plain, plain_texts = [], []
                if task is not None and task.unique_key is not None:
                    order.append(self._insert_unique(conn, task, text))
                elif task is not None:
                    plain.append(task)
                    plain_texts.append(text)
            found.update((t.id, t) for t in self._fetch(conn, [i for i in order if i not in found]))
            # plain tasks woke the workers from their own statement (PostgreSQL)
            self._notify(conn, [t for t in tasks if t.unique_key is not None])
        return [found[i] for i in order]

    def _insert_autocommit(self, tasks: Sequence[NewTask], texts: list[str]) -> list[Task]:
        """PostgreSQL, tasks without a unique key and no caller's transaction: the whole
        insert is one statement (wake-up included), so it runs autocommitted: no BEGIN
        nor COMMIT round trip, still all or nothing. On the driver's connection itself:
        SQLAlchemy's work per statement was a sixth of an ``enqueue``."""
        if len(tasks) == 1:
            statement, params = _PG_INSERT_ONE, _pg_values(tasks[0], texts[0])
        else:
            statement, params = _pg_many(tasks, texts)
        rows = _pg_rows_of(statement, self._driver_rows(self._driver_sql(statement), params))
        return _stored(tasks, texts, _pg_decided(tasks, rows, to_utc=True))

    def _insert_sqlite_one(self, task: NewTask, args: str) -> Task:
        """SQLite, one task without a unique key and no caller's transaction: one
        autocommitted statement on the driver's connection (a write statement takes
        the write lock when it starts, waiting as BEGIN IMMEDIATE does); SQLAlchemy's
        BEGIN, statement and COMMIT took twice the time of the insert itself."""
        dialect = self.engine.dialect
        bind, read = _sqlite_times(dialect)
        params = (
            task.name,
            task.handler,
            args,
            task.queue,
            int(task.priority),
            None if task.run_at is None else bind(task.run_at),
            int(task.max_attempts),
            None if task.timeout is None else float(task.timeout),
            task.unique_key,
            task.unique_key,
            bool(task.rerun_on_loss),
        )
        sql = _DRIVER_SQL.get((_SQLITE_INSERT_ONE, "sqlite"))
        if sql is None:
            now = str(_now().compile(dialect=dialect))
            sql = _DRIVER_SQL[(_SQLITE_INSERT_ONE, "sqlite")] = _SQLITE_INSERT_ONE.format(now=now)
        [(task_id, created_at, run_at, timeout)] = self._driver_rows(sql, params)
        return _stored([task], [args], [(task_id, read(created_at), read(run_at), timeout)])[0]

    def _driver_sql(self, statement: Any) -> str:
        """The SQL text of ``statement`` for this engine's driver (compiled once)."""
        dialect = self.engine.dialect
        key = (statement, f"{dialect.name}+{dialect.driver}")
        sql = _DRIVER_SQL.get(key)
        if sql is None:
            sql = _DRIVER_SQL[key] = str(statement.compile(dialect=dialect))
        return sql

    def _insert_plain(
        self, conn: Connection, tasks: Sequence[NewTask], texts: list[str]
    ) -> list[Task]:
        """Insert tasks without a unique key in one statement (SQLAlchemy splits a very
        long list on SQLite and MariaDB); returns them in the order given, as stored."""
        if self.capabilities.listen_notify:
            if len(tasks) == 1:
                statement, params = _PG_INSERT_ONE, _pg_values(tasks[0], texts[0])
            else:
                statement, params = _pg_many(tasks, texts)
            pg = _pg_rows_of(statement, list(conn.execute(statement, params).all()))
            return _stored(tasks, texts, _pg_decided(tasks, pg, to_utc=False))
        if len(tasks) > 1 and self._json_rows_sql() is not None and uniform(tasks):
            stored: list[Task] = []
            for start, end in _chunks(texts):
                stored += self._insert_json_rows(conn, tasks[start:end], texts[start:end])
            return stored
        values = [self._new_row(t, a) for t, a in zip(tasks, texts, strict=True)]
        rows = sorted(conn.execute(_INSERT_RETURNING, values), key=_first)  # in the order given
        return _stored(tasks, texts, rows)

    def _json_rows_sql(self) -> str | None:
        """``_ROWS_UNIFORM`` for this database's driver, or None where it cannot run:
        SQLite before 3.38 (JSON functions not built in), MySQL (no RETURNING), MariaDB
        before 10.6 (no JSON_TABLE)."""
        found = self.__dict__.get("_json_rows")
        if found is None:
            dialect: Any = self.engine.dialect
            placeholder = _PLACEHOLDERS.get(dialect.paramstyle)
            returning = "id"
            if dialect.name == "sqlite":
                ok = dialect.dbapi.sqlite_version_info >= (3, 38)
                rows = _JSON_ROWS["sqlite"]
                returning = "id, created_at, run_at, timeout"
            else:
                # the server's version is known once a connection was made (the caller's)
                version = dialect.server_version_info
                if version is None:
                    return None  # not known yet: asked again next time
                ok = bool(getattr(dialect, "is_mariadb", False)) and version >= (10, 6)
                rows = _JSON_ROWS["mariadb"]
            found = ""
            if ok and placeholder is not None:
                now = str(_now().compile(dialect=dialect))
                found = _ROWS_UNIFORM.format(
                    p=placeholder, now=now, rows=rows.format(p=placeholder), returning=returning
                )
            self.__dict__["_json_rows"] = found
        return found or None

    def _insert_json_rows(
        self, conn: Connection | None, tasks: Sequence[NewTask], texts: Sequence[str]
    ) -> list[Task]:
        """SQLite and MariaDB: ``tasks`` (``bulk.uniform``) in one statement on the
        driver (``_ROWS_UNIFORM``): in ``conn``'s transaction, or autocommitted (SQLite)."""
        sql = self._json_rows_sql()
        assert sql is not None
        bind, read = _sqlite_times(self.engine.dialect)
        first = tasks[0]
        params = (
            first.name,
            first.handler,
            first.queue,
            int(first.priority),
            None if first.run_at is None else bind(first.run_at),
            int(first.max_attempts),
            None if first.timeout is None else float(first.timeout),
            bool(first.rerun_on_loss),
            json_texts(texts),
        )
        if conn is None:
            rows = self._driver_rows(sql, params)
        else:
            rows = list(conn.exec_driver_sql(sql, params))
        rows.sort(key=_first)  # ids were taken in the order given
        if len(rows[0]) == 1:  # MariaDB: ids only; the rest is the same on every row
            assert conn is not None  # in the transaction: nobody changed the rows
            shared = tuple(conn.exec_driver_sql(_SHARED_TIMES, (rows[0][0],)).one())
            rows = [(task_id, *shared) for (task_id,) in rows]
        decided = []
        seen: dict[Any, Any] = {}  # a time read once: the rows share their times
        for task_id, created_at, run_at, timeout in rows:
            created = seen.get(created_at)
            if created is None:
                created = seen[created_at] = read(created_at)
            due = seen.get(run_at)
            if due is None:
                due = seen[run_at] = read(run_at)
            decided.append((task_id, created, due, timeout))
        return _stored(tasks, texts, decided)

    def _notify(self, conn: Connection, tasks: Sequence[NewTask]) -> None:
        """PostgreSQL: wake listening workers at commit for those of ``tasks`` due at once
        (see ``wakeup.py``): no run_at, or one already past by this host's clock (a skewed
        clock costs at most a poll interval, never a lost task)."""
        if not tasks or not self.capabilities.listen_notify:
            return
        now = datetime.now(UTC)
        queues = {t.queue for t in tasks if t.run_at is None or t.run_at <= now}
        if queues:
            conn.execute(NOTIFY_SQL, {"queues": sorted(queues)})

    def listen(self, on_wake: WakeFn, stop: threading.Event, interrupt: int | None = None) -> None:
        if self.capabilities.listen_notify:
            listen_postgres(self.engine, on_wake, stop, interrupt)
        elif self.capabilities.same_host_wakeup:
            listen_sqlite(self.engine, on_wake, stop)
        else:
            raise NotImplementedError(f"{self.dialect_name} has no wake-up; poll instead")

    def _new_row(self, task: NewTask, args: str | None = None) -> dict[str, Any]:
        return {
            "name": task.name,
            "handler": task.handler,
            "args": _args_json(task.args) if args is None else args,
            "queue": task.queue,
            "priority": task.priority,
            "run_at_in": task.run_at,
            "max_attempts": task.max_attempts,
            "timeout": task.timeout,
            "unique_key": task.unique_key,
            "active_key": task.unique_key,
            "rerun_on_loss": task.rerun_on_loss,
        }

    def _insert_unique(self, conn: Connection, task: NewTask, args: str | None = None) -> int:
        existing = select(T.id).where(T.active_key == task.unique_key)
        found = conn.execute(existing).scalar()
        if found is not None:
            return int(found)
        try:
            with conn.begin_nested():
                row = conn.execute(_INSERT.returning(T.id), self._new_row(task, args)).one()
                return int(row[0])
        except sa_exc.IntegrityError:  # a concurrent enqueue won the key
            found = conn.execute(existing).scalar()
            if found is None:
                raise
            return int(found)

    def _fetch(self, conn: Connection, ids: Sequence[int]) -> list[Task]:
        if not ids:
            return []
        rows = conn.execute(select(task_table).where(T.id.in_(list(ids)))).mappings().all()
        return [task_from_row(r) for r in rows]

    def _files(self, conn: Connection, task_id: int) -> tuple[TaskFile, ...]:
        rows = conn.execute(
            select(F.task_id, F.filename, F.content_type, F.size, F.created_at)
            .where(F.task_id == task_id)
            .order_by(F.id)
        ).mappings()
        return tuple(TaskFile(**dict(r)) for r in rows)

    def _files_of(self, conn: Connection, ids: Sequence[int]) -> dict[int, tuple[TaskFile, ...]]:
        """The files of many tasks in one query (a listed task shows its files too)."""
        if not ids:
            return {}
        rows = conn.execute(
            select(F.task_id, F.filename, F.content_type, F.size, F.created_at)
            .where(F.task_id.in_(list(ids)))
            .order_by(F.task_id, F.id)
        ).mappings()
        found: dict[int, list[TaskFile]] = {}
        for r in rows:
            found.setdefault(int(r["task_id"]), []).append(TaskFile(**dict(r)))
        return {task_id: tuple(files) for task_id, files in found.items()}

    def get(self, task_id: int) -> Task:
        with self._read() as conn:
            row = conn.execute(select(task_table).where(T.id == task_id)).mappings().first()
            if row is None:
                raise TaskNotFound(task_id)
            return task_from_row(row, self._files(conn, task_id))

    def list_tasks(self, flt: TaskFilter, sort: Sort, limit: int, cursor: str | None) -> Page:
        check_sort(sort)
        column = T[sort.field]
        where = filter_clause(flt)
        if cursor:
            value, last_id = decode_cursor(sort, cursor)
            where = and_(where, keyset_clause(sort, value, last_id))
        order = [column.desc(), T.id.desc()] if sort.descending else [column.asc(), T.id.asc()]
        if sort.field == "id":
            order = order[:1]
        stmt = select(task_table).where(where).order_by(*order).limit(limit + 1)
        with self._read() as conn:
            rows = conn.execute(stmt).mappings().all()
            files = self._files_of(conn, [int(r["id"]) for r in rows[:limit]])
        tasks = [task_from_row(r, files.get(int(r["id"]), ())) for r in rows[:limit]]
        next_cursor = None
        if len(rows) > limit and tasks:
            last = rows[limit - 1]
            next_cursor = encode_cursor(sort, last[sort.field], int(last["id"]))
        return Page(tasks=tasks, next_cursor=next_cursor)

    def count(self, flt: TaskFilter) -> int:
        with self._read() as conn:
            stmt = select(func.count()).select_from(task_table).where(filter_clause(flt))
            return int(conn.execute(stmt).scalar() or 0)

    def _ids(self, conn: Connection, flt: TaskFilter, limit: int | None, *extra: Any) -> list[int]:
        stmt = select(T.id).where(filter_clause(flt), *extra).order_by(T.id)
        if limit is not None:
            stmt = stmt.limit(limit)
        return [int(i) for i in conn.execute(stmt).scalars()]

    def update_pending(self, task_id: int, changes: dict[str, Any]) -> Task:
        allowed = {"name", "priority", "run_at", "queue", "args", "max_attempts", "timeout"}
        unknown = set(changes) - allowed
        if unknown:
            raise InvalidInput(f"Cannot change {', '.join(sorted(unknown))} of a task.")
        values = dict(changes)
        if "args" in values:
            values["args"] = json.dumps(values["args"], ensure_ascii=False, separators=(",", ":"))
        with self._write() as conn:
            if values:
                result = conn.execute(
                    update(task_table).where(T.id == task_id, T.status == _PENDING).values(**values)
                )
                if result.rowcount == 0:
                    status = conn.execute(select(T.status).where(T.id == task_id)).scalar()
                    if status is None:
                        raise TaskNotFound(task_id)
                    raise InvalidTransition(
                        f"Task {task_id} is {status}; only a pending task can be changed."
                    )
            found = self._fetch(conn, [task_id])
        if not found:
            raise TaskNotFound(task_id)
        return found[0]

    def delete(self, flt: TaskFilter, limit: int | None = None) -> list[int]:
        with self._write() as conn:
            ids = self._ids(conn, flt, limit)
            if ids:
                conn.execute(delete(file_table).where(F.task_id.in_(ids)))
                conn.execute(delete(task_table).where(T.id.in_(ids)))
        return ids

    def retry(self, flt: TaskFilter, limit: int | None = None) -> list[int]:
        moved: list[int] = []
        with self._write() as conn:
            statuses = [s.value for s in RETRYABLE]
            for task_id in self._ids(conn, flt, limit, T.status.in_(statuses)):
                try:
                    with conn.begin_nested():
                        result = conn.execute(
                            update(task_table)
                            .where(T.id == task_id, T.status.in_(statuses))
                            .values(
                                status=_PENDING,
                                run_at=utcnow(),
                                finished_at=None,
                                worker=None,
                                claim_token=None,
                                cancel_requested=False,
                                lost_count=0,
                                active_key=T.unique_key,
                                # an explicit retry always gets one more run
                                max_attempts=case(
                                    (T.attempts >= T.max_attempts, T.attempts + 1),
                                    else_=T.max_attempts,
                                ),
                            )
                        )
                except sa_exc.IntegrityError:
                    continue  # another live task holds its unique key
                if result.rowcount:
                    moved.append(task_id)
        return moved

    def cancel(self, flt: TaskFilter, limit: int | None = None) -> tuple[list[int], list[int]]:
        cancelled: list[int] = []
        requested: list[int] = []
        with self._write() as conn:
            live = T.status.in_([_PENDING, _RUNNING])
            for task_id in self._ids(conn, flt, limit, live):
                result = conn.execute(
                    update(task_table)
                    .where(T.id == task_id, T.status == _PENDING)
                    .values(
                        status=TaskStatus.CANCELLED.value, finished_at=utcnow(), active_key=None
                    )
                )
                if result.rowcount:
                    cancelled.append(task_id)
                    continue
                result = conn.execute(
                    update(task_table)
                    .where(T.id == task_id, T.status == _RUNNING)
                    .values(cancel_requested=True)
                )
                if result.rowcount:
                    requested.append(task_id)
        return cancelled, requested

    def _clean_where(self, older_than: float, statuses: Sequence[TaskStatus]) -> Any:
        finals = [s.value for s in statuses if s in FINAL_STATUSES]
        if len(finals) != len(statuses):
            raise InvalidInput("Only finished tasks (success, error, cancelled) can be cleaned.")
        return and_(T.status.in_(finals), T.finished_at < utcnow(-older_than))

    def count_cleanable(self, older_than: float, statuses: Sequence[TaskStatus]) -> int:
        where = self._clean_where(older_than, statuses)
        with self._read() as conn:
            stmt = select(func.count()).select_from(task_table).where(where)
            return int(conn.execute(stmt).scalar() or 0)

    def clean(
        self, older_than: float, statuses: Sequence[TaskStatus], batch_size: int
    ) -> list[int]:
        where = self._clean_where(older_than, statuses)
        with self._write() as conn:
            ids = [
                int(i)
                for i in conn.execute(
                    select(T.id).where(where).order_by(T.id).limit(batch_size)
                ).scalars()
            ]
            if ids:
                conn.execute(delete(file_table).where(F.task_id.in_(ids)))
                conn.execute(delete(task_table).where(T.id.in_(ids), where))
        return ids

    def stats(self) -> Stats:
        with self._read() as conn:
            by_status: dict[str, int] = {s.value: 0 for s in TaskStatus}
            by_queue: dict[str, dict[str, int]] = {}
            rows = conn.execute(
                select(T.queue, T.status, func.count()).group_by(T.queue, T.status)
            ).all()
            for queue, status, count in rows:
                by_status[status] = by_status.get(status, 0) + int(count)
                by_queue.setdefault(queue, {s.value: 0 for s in TaskStatus})[status] = int(count)
            oldest = conn.execute(
                select(func.min(T.run_at), utcnow()).where(
                    T.status == _PENDING, T.run_at <= utcnow()
                )
            ).one()
            age = (oldest[1] - oldest[0]).total_seconds() if oldest[0] is not None else None
            finished = [TaskStatus.SUCCESS.value, TaskStatus.ERROR.value]

            def finished_since(seconds: float) -> int:
                stmt = select(func.count()).where(
                    T.status.in_(finished), T.finished_at >= utcnow(-seconds)
                )
                return int(conn.execute(stmt).scalar() or 0)

            workers = [
                WorkerInfo(
                    id=r.id,
                    hostname=r.hostname,
                    pid=r.pid,
                    slots=r.slots,
                    queues=tuple(q for q in r.queues.split(",") if q),
                    started_at=r.started_at,
                    heartbeat_at=r.heartbeat_at,
                )
                for r in conn.execute(select(worker_table).order_by(W.started_at)).all()
            ]
            return Stats(
                by_status=by_status,
                by_queue=by_queue,
                total=sum(by_status.values()),
                oldest_pending_age=age,
                finished_last_minute=finished_since(60),
                finished_last_hour=finished_since(3600),
                workers=workers,
            )

    def read_file(self, task_id: int, filename: str) -> tuple[TaskFile, bytes]:
        if "\x00" in filename:  # no stored name has one (and PostgreSQL refuses it)
            raise InvalidInput(f"Task {task_id} has no file named {filename!r}.")
        with self._read() as conn:
            row = (
                conn.execute(select(file_table).where(F.task_id == task_id, F.filename == filename))
                .mappings()
                .first()
            )
        if row is None:
            raise InvalidInput(f"Task {task_id} has no file named {filename!r}.")
        meta = TaskFile(
            task_id=task_id,
            filename=row["filename"],
            content_type=row["content_type"],
            size=int(row["size"]),
            created_at=row["created_at"],
        )
        return meta, bytes(row["content"])

    # -- periodic tasks -----------------------------------------------------------
    def periodic_ticks(self) -> dict[str, datetime]:
        with self._read() as conn:
            rows = conn.execute(select(periodic_table.c.name, periodic_table.c.last_tick)).all()
        return {str(name): tick for name, tick in rows}

    def take_tick(
        self, name: str, tick: datetime, task: NewTask | None, *, enqueue_if_new: bool = True
    ) -> tuple[bool, Task | None]:
        """Move periodic ``name`` to ``tick`` if it is behind (or new), and insert
        ``task`` in the same transaction: of all workers trying the same tick,
        exactly one wins. Returns (won, the task inserted)."""
        with self._write() as conn:
            won = conn.execute(
                update(periodic_table)
                .where(P.name == name, P.last_tick < tick)
                .values(last_tick=tick)
            ).rowcount
            if not won:
                if conn.execute(select(P.name).where(P.name == name)).first() is not None:
                    return False, None
                try:
                    with conn.begin_nested():
                        conn.execute(insert(periodic_table).values(name=name, last_tick=tick))
                except sa_exc.IntegrityError:  # another worker saw it first
                    return False, None
                if not enqueue_if_new:
                    return True, None
            if task is None:
                return True, None
            if task.unique_key is not None:
                task_id = self._insert_unique(conn, task)
            else:
                task_id = int(conn.execute(_INSERT.returning(T.id), self._new_row(task)).one()[0])
            return True, self._fetch(conn, [task_id])[0]

    def server_now(self) -> datetime:
        with self._read() as conn:
            value: datetime = conn.execute(select(utcnow())).scalar_one()
            return value
