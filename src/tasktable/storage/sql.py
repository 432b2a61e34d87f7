"""SQLStorage: the :class:`~tasktable.storage.base.Storage` protocol on SQLAlchemy Core.

One implementation serves SQLite, PostgreSQL and MariaDB; what differs per
dialect (the claim, "now", column types) lives in ``claim.py`` and ``types.py``.
Every state change is one conditional write: a status move names the status
it moves from, and a worker's writes name its claim token.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    LargeBinary,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    null,
    select,
    true,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy import text as sql_text

from ..core.status import FINAL_STATUSES, RETRYABLE, TaskStatus
from ..core.task import ActionLink, Message, NewTask, Progress, Task, TaskFile
from ..errors import InvalidInput, InvalidTransition, TaskNotFound
from .base import Outcome, Page, Sort, Stats, TaskFilter, WorkerInfo
from .claim import Claimer, claimer_for
from .engine import build_engine, safe_url, wrap_db_errors
from .migrate import check_schema, migrate
from .rows import (
    action_link_json,
    check_sort,
    decode_cursor,
    encode_cursor,
    filter_clause,
    keyset_clause,
    messages_json,
    task_from_row,
)
from .schema import file_table, periodic_table, task_table, worker_table
from .types import UTCDateTime, utcnow
from .wakeup import NOTIFY_SQL, WakeFn, listen_postgres, listen_sqlite

T = task_table.c
F = file_table.c
W = worker_table.c
P = periodic_table.c
_RUNNING = TaskStatus.RUNNING.value
#: created_at and a missing run_at come from the database clock.
_INSERT = insert(task_table).values(
    created_at=utcnow(),
    run_at=func.coalesce(bindparam("run_at_in", type_=UTCDateTime()), utcnow()),
)
_INSERT_RETURNING = _INSERT.returning(*task_table.c, sort_by_parameter_order=True)
_PENDING = TaskStatus.PENDING.value
_FILE_CHUNK = 1024 * 1024  # bytes of a file sent in one statement on MariaDB/MySQL
_PG_FINISH_KEYS = ("status", "messages", "error", "action_link", "progress_done", "progress_total")
#: Final outcomes of several runs in one statement, each row fenced by its claim token.
_PG_FINISH_MANY = sql_text(
    """
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
)


class SQLStorage:
    """Tasks in a SQL database reached through one SQLAlchemy engine (two on servers)."""

    #: A worker's claims and outcomes go through an engine of their own with no
    #: pre-ping (a ``SELECT 1`` round trip on every checkout): a connection the
    #: server dropped fails that statement instead, SQLAlchemy then discards the
    #: pool's connections, and the claim loop and the completer retry as in any
    #: outage. Everything else keeps the pre-ping. None: ``engine`` serves both.
    hot_engine: Engine | None = None

    def __init__(self, url: str, *, pool_size: int = 5) -> None:
        self.url = url
        self.safe_url = safe_url(url)
        self.engine: Engine = build_engine(url, pool_size=pool_size)
        if self.engine.dialect.name != "sqlite":  # no pre-ping on SQLite anyway
            self.hot_engine = build_engine(url, pool_size=2, pre_ping=False)
        self.dialect_name = self.engine.dialect.name
        self.claimer: Claimer = claimer_for(self.dialect_name)
        self.capabilities = self.claimer.capabilities

    # -- plumbing ---------------------------------------------------------------
    @contextmanager
    def _write(self, connection: Connection | None = None) -> Iterator[Connection]:
        if connection is not None:  # the caller's transaction
            yield connection
            return
        with wrap_db_errors(self.url), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def _write_hot(self) -> Iterator[Connection]:
        """A write on the worker's hot path (claim, finish): see ``hot_engine``."""
        with wrap_db_errors(self.url), (self.hot_engine or self.engine).begin() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with (
            wrap_db_errors(self.url),
            self.engine.connect().execution_options(tasktable_begin="DEFERRED") as conn,
        ):
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()
        if self.hot_engine is not None:
            self.hot_engine.dispose()

    # -- schema -----------------------------------------------------------------
    def migrate(self) -> list[int]:
        with wrap_db_errors(self.url, "migrate"):
            return migrate(self.engine)

    def check_schema(self) -> None:
        with wrap_db_errors(self.url, "connect to"):
            check_schema(self.engine, self.safe_url)

    # -- repository -------------------------------------------------------------
    def insert(self, tasks: Sequence[NewTask], *, connection: Any = None) -> list[Task]:
        if not tasks:
            return []
        with self._write(connection) as conn:
            # In the order given, so that ids (and so the run order) follow it: runs of
            # plain tasks in one round trip each, a task with a unique key on its own.
            # A new row comes back whole from its INSERT ... RETURNING (no re-read); only
            # a task found by its unique key is read.
            order: list[int] = []
            found: dict[int, Task] = {}
            plain: list[NewTask] = []
            for task in [*tasks, None]:
                if (task is None or task.unique_key is not None) and plain:
                    rows = conn.execute(_INSERT_RETURNING, [self._new_row(t) for t in plain])
                    for new in map(task_from_row, rows.mappings()):
                        found[new.id] = new
                        order.append(new.id)
                    plain = []
                if task is not None and task.unique_key is not None:
                    order.append(self._insert_unique(conn, task))
                elif task is not None:
                    plain.append(task)
            found.update((t.id, t) for t in self._fetch(conn, [i for i in order if i not in found]))
            self._notify(conn, [t for t in tasks if t.run_at is None])
        return [found[i] for i in order]

    def _notify(self, conn: Connection, due: Sequence[NewTask]) -> None:
        """PostgreSQL: wake listening workers at commit (see ``wakeup.py``)."""
        if due and self.capabilities.listen_notify:
            conn.execute(NOTIFY_SQL, {"queues": sorted({t.queue for t in due})})

    def listen(self, on_wake: WakeFn, stop: threading.Event) -> None:
        if self.capabilities.listen_notify:
            listen_postgres(self.engine, on_wake, stop)
        elif self.capabilities.same_host_wakeup:
            listen_sqlite(self.engine, on_wake, stop)
        else:
            raise NotImplementedError(f"{self.dialect_name} has no wake-up; poll instead")

    def _new_row(self, task: NewTask) -> dict[str, Any]:
        return {
            "name": task.name,
            "handler": task.handler,
            "args": json.dumps(task.args, ensure_ascii=False, separators=(",", ":")),
            "status": _PENDING,
            "messages": "[]",
            "queue": task.queue,
            "priority": task.priority,
            "run_at_in": task.run_at,
            "attempts": 0,
            "max_attempts": task.max_attempts,
            "timeout": task.timeout,
            "unique_key": task.unique_key,
            "active_key": task.unique_key,
            "cancel_requested": False,
            "lost_count": 0,
            "rerun_on_loss": task.rerun_on_loss,
        }

    def _insert_unique(self, conn: Connection, task: NewTask) -> int:
        existing = select(T.id).where(T.active_key == task.unique_key)
        found = conn.execute(existing).scalar()
        if found is not None:
            return int(found)
        try:
            with conn.begin_nested():
                row = conn.execute(_INSERT.returning(T.id), self._new_row(task)).one()
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

    # -- worker -----------------------------------------------------------------
    def register_worker(self, info: WorkerInfo) -> None:
        with self._write() as conn:
            conn.execute(
                insert(worker_table).values(
                    id=info.id,
                    hostname=info.hostname[:255],
                    pid=info.pid,
                    slots=info.slots,
                    queues=",".join(info.queues)[:1000],
                    started_at=utcnow(),
                    heartbeat_at=utcnow(),
                )
            )

    def heartbeat(self, worker_id: str, task_ids: Sequence[int] | None = None) -> bool:
        with self._write() as conn:
            alive = conn.execute(
                update(worker_table).where(W.id == worker_id).values(heartbeat_at=utcnow())
            ).rowcount
            if alive and (task_ids is None or task_ids):
                mine = and_(T.worker == worker_id, T.status == _RUNNING)
                if task_ids is not None:  # only the runs the worker still holds
                    mine = and_(mine, T.id.in_(list(task_ids)))
                conn.execute(update(task_table).where(mine).values(heartbeat_at=utcnow()))
        return bool(alive)

    def cancel_requests(self, task_ids: Sequence[int]) -> list[int]:
        """Which of these running tasks someone asked to cancel (one read)."""
        if not task_ids:
            return []
        with self._read() as conn:
            rows = conn.execute(
                select(T.id).where(
                    T.id.in_(list(task_ids)), T.status == _RUNNING, T.cancel_requested
                )
            ).scalars()
            return [int(i) for i in rows]

    def deregister_worker(self, worker_id: str) -> None:
        with self._write() as conn:
            conn.execute(delete(worker_table).where(W.id == worker_id))

    def claim(
        self,
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        *,
        alive_within: float | None = None,
    ) -> list[Task]:
        token = secrets.token_hex(16)
        with self._write_hot() as conn:
            # alive_within: the claim statement itself requires a fresh worker row.
            rows = self.claimer.claim(conn, worker_id, token, queues, limit, alive_within)
        return [task_from_row(r) for r in rows]

    def _fence(self, task: Task) -> Any:
        if task.claim_token is None:
            raise InvalidTransition(f"Task {task.id} was not claimed by this worker.")
        return and_(T.id == task.id, T.claim_token == task.claim_token, T.status == _RUNNING)

    def _finish_values(self, outcome: Outcome) -> dict[str, Any]:
        values: dict[str, Any] = {
            "status": outcome.status.value,
            "messages": messages_json(outcome.messages),
            # PostgreSQL text cannot hold NUL; a traceback quoting binary data may.
            "error": outcome.error.replace("\x00", "\\x00") if outcome.error else outcome.error,
            "action_link": action_link_json(outcome.action_link),
            "progress_done": outcome.progress.done if outcome.progress else None,
            "progress_total": outcome.progress.total if outcome.progress else None,
        }
        if outcome.status.is_final:
            values.update(finished_at=utcnow(), active_key=None, claim_token=None)
        else:  # back to pending: a retry (or a release that does not charge the attempt)
            values.update(
                worker=None,
                claim_token=None,
                heartbeat_at=None,
                run_at=outcome.run_at if outcome.run_at is not None else utcnow(),
            )
            if not outcome.charge_attempt:
                values["attempts"] = T.attempts - 1
            # A cancel request wins over running again: decided in this same write.
            asked = T.cancel_requested == true()
            values.update(
                status=case((asked, TaskStatus.CANCELLED.value), else_=_PENDING),
                finished_at=case((asked, utcnow()), else_=null()),
                active_key=case((asked, null()), else_=T.active_key),
            )
        return values

    def finish(self, task: Task, outcome: Outcome) -> bool:
        values = self._finish_values(outcome)
        with self._write_hot() as conn:
            return bool(
                conn.execute(update(task_table).where(self._fence(task)).values(values)).rowcount
            )

    def finish_many(self, items: Sequence[tuple[Task, Outcome]]) -> list[bool]:
        """Persist several outcomes in one transaction, each fenced by its own claim
        token; per item, False = lease lost. All or nothing.

        On PostgreSQL the final outcomes go in one ``UPDATE ... FROM unnest(...)
        RETURNING id`` (which rows were updated tells the lost leases apart); the
        rest, and every outcome on SQLite and MariaDB, one fenced UPDATE each.
        """
        if not items:
            return []
        for task, _ in items:
            self._fence(task)  # every task must carry its claim token
        with self._write_hot() as conn:
            done: dict[int, bool] = {}
            rest = list(items)
            if self.dialect_name == "postgresql":
                final = [(t, o) for t, o in items if o.status.is_final]
                rest = [(t, o) for t, o in items if not o.status.is_final]
                if len(final) > 1:
                    updated = self._pg_finish_final(conn, final)
                    done.update({t.id: t.id in updated for t, _ in final})
                else:
                    rest = list(items)
            for task, outcome in rest:
                stmt = update(task_table).where(self._fence(task))
                done[task.id] = bool(
                    conn.execute(stmt.values(self._finish_values(outcome))).rowcount
                )
        return [done[task.id] for task, _ in items]

    def _pg_finish_final(self, conn: Connection, items: Sequence[tuple[Task, Outcome]]) -> set[int]:
        rows = [self._finish_values(o) for _, o in items]
        params = {
            "ids": [t.id for t, _ in items],
            "tokens": [t.claim_token for t, _ in items],
            **{key: [r[key] for r in rows] for key in _PG_FINISH_KEYS},
        }
        return {int(i) for i in conn.execute(_PG_FINISH_MANY, params).scalars()}

    def report(
        self,
        task: Task,
        progress: Progress | None,
        messages: Sequence[Message],
        action_link: ActionLink | None,
    ) -> bool:
        values = {
            "progress_done": progress.done if progress else None,
            "progress_total": progress.total if progress else None,
            "messages": messages_json(messages),
            "action_link": action_link_json(action_link),
        }
        with self._write() as conn:
            return bool(
                conn.execute(update(task_table).where(self._fence(task)).values(values)).rowcount
            )

    def attach_file(self, task: Task, filename: str, content_type: str, data: bytes) -> bool:
        with self._write() as conn:
            live = conn.execute(select(T.id).where(self._fence(task))).first()
            if live is None:
                return False
            conn.execute(delete(file_table).where(F.task_id == task.id, F.filename == filename))
            # MariaDB/MySQL refuse a statement over max_allowed_packet (16 MiB by default),
            # and PyMySQL escapes bytes (a NUL takes two): send big files in pieces.
            step = _FILE_CHUNK if self.dialect_name in ("mysql", "mariadb") else len(data) or 1
            conn.execute(
                insert(file_table).values(
                    task_id=task.id,
                    filename=filename,
                    content_type=content_type,
                    size=len(data),
                    content=data[:step],
                    created_at=utcnow(),
                )
            )
            for start in range(step, len(data), step):
                piece = bindparam("piece", data[start : start + step], type_=LargeBinary())
                conn.execute(
                    update(file_table)
                    .where(F.task_id == task.id, F.filename == filename)
                    .values(content=func.concat(F.content, piece))
                )
        return True

    def release(self, task: Task, message: Message) -> bool:
        outcome = Outcome(
            status=TaskStatus.PENDING,
            messages=(*task.messages, message),
            progress=task.progress,
            action_link=task.action_link,
            charge_attempt=False,
        )
        return self.finish(task, outcome)

    def rescue(self, dead_after: float, max_lost: int) -> list[int]:
        """Tasks whose heartbeat is older than ``dead_after`` seconds, or whose worker
        row is gone, go back to pending (or end error after ``max_lost`` losses).
        Each move is conditional on the claim token seen, so concurrent rescuers
        never both act on one task."""
        rescued: list[int] = []
        with self._write() as conn:
            # SKIP LOCKED (servers): a row locked by a worker frozen mid-transaction is
            # left for a later pass instead of stalling the rescue of everyone else.
            dead = conn.execute(
                select(W.id)
                .where(W.heartbeat_at < utcnow(-dead_after))
                .with_for_update(skip_locked=True)
            ).scalars()
            dead_ids = list(dead)
            if dead_ids:
                conn.execute(delete(worker_table).where(W.id.in_(dead_ids)))
            stale = conn.execute(
                select(
                    T.id,
                    T.claim_token,
                    T.messages,
                    T.lost_count,
                    T.worker,
                    T.rerun_on_loss,
                    T.cancel_requested,
                )
                .where(
                    T.status == _RUNNING,
                    (T.heartbeat_at < utcnow(-dead_after))
                    | T.worker.not_in(select(W.id).scalar_subquery()),
                )
                .with_for_update(skip_locked=True)
            ).all()
            for task_id, token, messages, lost, worker, rerun, asked in stale:
                lost = int(lost) + 1
                history = json.loads(messages or "[]")
                final = lost >= max_lost or not rerun or bool(asked)
                if asked:  # a cancel request wins over running again
                    text = f"Worker {worker} was lost (no heartbeat); cancelled at request."
                elif not rerun:
                    text = (
                        f"Worker {worker} was lost (no heartbeat); this task's handler does "
                        "not allow running it again (rerun_on_loss = False)."
                    )
                    error = "worker lost; not run again (rerun_on_loss = False)"
                elif final:
                    text = (
                        f"Worker {worker} was lost (no heartbeat); this task's worker was "
                        f"lost {lost} times, giving up."
                    )
                    error = f"worker lost {lost} times"
                else:
                    text = f"Worker {worker} was lost (no heartbeat); the task will run again."
                level = "error" if final and not asked else "warning"
                history.append(Message(text=text, level=level).to_json())
                values: dict[str, Any] = {
                    "messages": json.dumps(history, ensure_ascii=False, separators=(",", ":")),
                    "lost_count": lost,
                    "claim_token": None,
                }
                if asked:
                    values.update(
                        status=TaskStatus.CANCELLED.value, finished_at=utcnow(), active_key=None
                    )
                elif final:
                    values.update(
                        status=TaskStatus.ERROR.value,
                        finished_at=utcnow(),
                        active_key=None,
                        error=error,
                    )
                else:
                    values.update(status=_PENDING, worker=None, heartbeat_at=None, run_at=utcnow())
                result = conn.execute(
                    update(task_table)
                    .where(
                        T.id == task_id,
                        T.status == _RUNNING,
                        T.claim_token == token,
                        T.cancel_requested == asked,  # a request made since is seen next time
                    )
                    .values(values)
                )
                if result.rowcount:
                    rescued.append(int(task_id))
        return rescued

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
