"""The worker's side of SQLStorage: its row, claims, outcomes, progress, files, rescue.

Every write a worker makes for a run is fenced by the run's claim token (and
``status = 'running'``), so a worker that lost its claim writes nothing.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
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

from ..core.status import TaskStatus
from ..core.task import ActionLink, Message, Progress, Task
from ..errors import InvalidTransition
from .base import Outcome, WorkerInfo
from .claim import ReturningClaimer, SQLiteClaimer
from .hot import (
    FINISH_KEYS,
    PG_FINISH_MANY,
    SQLITE_FINISH_SQL,
    PGFinishAndClaim,
    final_values,
    json_finish_params,
    mysql_finish,
    pg_finish_params,
)
from .plumbing import SQLBase
from .rows import (
    action_link_json,
    aware_times,
    messages_json,
    sqlite_times,
    task_from_row,
    task_from_values,
)
from .schema import file_table, task_table, worker_table
from .types import utcnow

T = task_table.c
F = file_table.c
W = worker_table.c
_RUNNING = TaskStatus.RUNNING.value
_TOKENS_LOCK = threading.Lock()
_tokens: tuple[int, str, itertools.count[int]] = (0, "", itertools.count())


def claim_token() -> str:
    """A claim's token (32 hex digits, the column's width): unique, not secret. It
    fences a claim's writes, so it only has to differ from every other claim's: 16
    random digits drawn once per process (again after a fork), then a counter. A
    fresh ``secrets.token_hex`` per claim was a system call on the claim loop, which
    then waited for the GIL to come back (4% of its time under load)."""
    global _tokens
    pid, prefix, counter = _tokens
    if pid != os.getpid():
        with _TOKENS_LOCK:
            if _tokens[0] != os.getpid():
                _tokens = (os.getpid(), secrets.token_hex(8), itertools.count())
            pid, prefix, counter = _tokens
    return f"{prefix}{next(counter):016x}"


_PENDING = TaskStatus.PENDING.value
_FILE_CHUNK = 1024 * 1024  # bytes of a file sent in one statement on MariaDB/MySQL
_PG_FINISH_AND_CLAIM = PGFinishAndClaim()


def _claimed(task: Task) -> None:
    """Every write for a run is fenced by its claim token: a task without one is refused."""
    if task.claim_token is None:
        raise InvalidTransition(f"Task {task.id} was not claimed by this worker.")


class WorkerSide(SQLBase):
    """Worker registration, claims and the fenced writes of a run."""

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
        token = claim_token()
        # One statement on PostgreSQL (autocommit) and SQLite; two in one transaction on
        # MariaDB. alive_within: the claim itself requires a fresh worker row.
        with self._one_statement() as conn:
            if self.dialect_name == "sqlite":
                return self._claim_sqlite(conn, worker_id, token, queues, limit, alive_within)
            rows = self.claimer.claim(conn, worker_id, token, queues, limit, alive_within)
        return [task_from_row(r) for r in rows]

    def _claim_sqlite(
        self,
        conn: Connection,
        worker_id: str,
        token: str,
        queues: Sequence[str],
        limit: int,
        alive_within: float | None,
    ) -> list[Task]:
        """SQLite's claim as the driver's statement, rows straight to Tasks."""
        assert isinstance(self.claimer, SQLiteClaimer)
        rows = self.claimer.claim_values(conn, worker_id, token, queues, limit, alive_within)
        when = sqlite_times()
        return [task_from_values(r, when) for r in rows]

    def _fence(self, task: Task) -> Any:
        _claimed(task)
        return and_(T.id == task.id, T.claim_token == task.claim_token, T.status == _RUNNING)

    def _finish_values(self, outcome: Outcome) -> dict[str, Any]:
        values: dict[str, Any] = dict(zip(FINISH_KEYS, final_values(outcome), strict=True))
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

        Final outcomes go in one ``UPDATE ... RETURNING id`` (PostgreSQL, SQLite: which
        rows came back tells the lost leases apart; on PostgreSQL in autocommit when
        that is the only statement), on MariaDB in two statements (``hot.py``); the
        rest (retries, releases) one fenced UPDATE each.
        """
        if not items:
            return []
        for task, _ in items:
            _claimed(task)
        if self.dialect_name == "postgresql" and all(o.status.is_final for _, o in items):
            with self._one_statement() as conn:
                written = self._finish_on(conn, items)
        else:
            with self._write_hot() as conn:
                written = self._finish_on(conn, items)
        return [task.id in written for task, _ in items]

    def finish_and_claim(
        self,
        items: Sequence[tuple[Task, Outcome]],
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        *,
        alive_within: float | None = None,
    ) -> tuple[list[bool], list[Task]]:
        """:meth:`finish_many` and :meth:`claim` in one atomic step (see ``hot.py``):
        one statement on PostgreSQL when every outcome is final, else one transaction.
        Returns (per item, False = lease lost; the tasks claimed)."""
        if not items:
            return [], self.claim(worker_id, queues, limit, alive_within=alive_within)
        if limit <= 0:
            return self.finish_many(items), []
        for task, _ in items:
            _claimed(task)
        token = claim_token()
        rows: Sequence[Mapping[str, Any]]
        if self.dialect_name == "postgresql" and all(o.status.is_final for _, o in items):
            assert isinstance(self.claimer, ReturningClaimer)
            params = self.claimer.params(worker_id, token, queues, limit, alive_within)
            shape = {"queues": bool(queues), "alive": alive_within is not None}
            if self.hot_engine is not None:  # the driver's connection, autocommitted
                sql = _PG_FINISH_AND_CLAIM.driver_sql(self.hot_engine.dialect, **shape)
                raw = self._driver_rows(
                    sql, _PG_FINISH_AND_CLAIM.params(items, params), self.hot_engine
                )
                written, values = _PG_FINISH_AND_CLAIM.values(raw)
                when = aware_times()
                tasks = [task_from_values(v, when) for v in values]
            else:
                with self._one_statement() as conn:
                    written, rows = _PG_FINISH_AND_CLAIM.run(conn, items, params, **shape)
                tasks = [task_from_row(r) for r in rows]
            tasks.sort(key=lambda t: (-t.priority, t.id))
        elif self.dialect_name == "sqlite":
            with self._write_hot() as conn:
                written = self._finish_on(conn, items)
                tasks = self._claim_sqlite(conn, worker_id, token, queues, limit, alive_within)
        else:
            with self._write_hot() as conn:
                written = self._finish_on(conn, items)
                rows = self.claimer.claim(conn, worker_id, token, queues, limit, alive_within)
            tasks = [task_from_row(r) for r in rows]
        return [task.id in written for task, _ in items], tasks

    def _finish_on(self, conn: Connection, items: Sequence[tuple[Task, Outcome]]) -> set[int]:
        """Write the outcomes on ``conn``; the ids of those that were still ours."""
        final = [(t, o) for t, o in items if o.status.is_final]
        rest = [(t, o) for t, o in items if not o.status.is_final]
        written: set[int] = set()
        if final and self.dialect_name == "postgresql":
            found = conn.execute(PG_FINISH_MANY, pg_finish_params(final)).scalars()
            written.update(int(i) for i in found)
        elif final and self.dialect_name == "sqlite":
            ours = conn.exec_driver_sql(SQLITE_FINISH_SQL, json_finish_params(final))
            written.update(int(i) for i in ours.scalars())
        elif final:
            written.update(mysql_finish(conn, final))
        else:
            rest = list(items)
        for task, outcome in rest:
            stmt = update(task_table).where(self._fence(task))
            if conn.execute(stmt.values(self._finish_values(outcome))).rowcount:
                written.add(task.id)
        return written

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
