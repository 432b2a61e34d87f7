"""Rows to values, filters to WHERE clauses, and keyset cursors."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_
from sqlalchemy.engine.processors import str_to_datetime as _str_to_datetime

from ..core.status import TaskStatus
from ..core.task import ActionLink, Message, Progress, Task, TaskFile
from ..core.validation import check_no_nul
from ..errors import InvalidInput
from .base import SORT_FIELDS, Sort, TaskFilter
from .bulk import builder
from .schema import task_table

T = task_table.c

#: The task table's columns in order: the positions of a whole row (``RETURNING *``).
COLUMN_NAMES = tuple(c.name for c in task_table.c)
#: The order ``task_from_values`` unpacks; checked against the schema at import.
_UNPACKED = (
    *("id", "name", "handler", "args", "status", "messages", "created_at", "executed_at"),
    *("finished_at", "action_link", "queue", "priority", "run_at", "attempts"),
    *("max_attempts", "timeout", "progress_done", "progress_total", "error", "worker"),
    *("claim_token", "heartbeat_at", "unique_key", "active_key", "cancel_requested"),
    *("lost_count", "rerun_on_loss"),
)
if COLUMN_NAMES != _UNPACKED:  # pragma: no cover - a schema change must update both
    raise RuntimeError("task_from_values unpacks the task table's columns by position")
_STATUSES = {s.value: s for s in TaskStatus}
_loads = json.loads


def task_from_values(values: Sequence[Any], when: Callable[[Any], datetime | None]) -> Task:
    """A claimed row as the driver returns it (columns in table order, no SQLAlchemy
    processing) to a Task: the worker's hot path, so with no per-column lookups by
    name. ``when`` turns the driver's datetime value into an aware UTC datetime."""
    (
        id_,
        name,
        handler,
        args,
        status,
        messages,
        created_at,
        executed_at,
        finished_at,
        action_link,
        queue,
        priority,
        run_at,
        attempts,
        max_attempts,
        timeout,
        done,
        total,
        error,
        worker,
        claim_token,
        heartbeat_at,
        unique_key,
        _active_key,
        cancel_requested,
        _lost_count,
        rerun_on_loss,
    ) = values
    task: Task = _build_task(
        int(id_),
        name,
        handler,
        _loads(args),
        _STATUSES.get(status) or TaskStatus(status),
        tuple(Message.from_json(m) for m in _loads(messages))
        if messages and messages != "[]"
        else (),
        when(created_at),
        when(executed_at),
        when(finished_at),
        ActionLink.from_json(_loads(action_link)) if action_link else None,
        queue,
        int(priority),
        when(run_at),
        int(attempts),
        int(max_attempts),
        timeout,
        Progress(done=int(done), total=None if total is None else int(total))
        if done is not None
        else None,
        error,
        worker,
        when(heartbeat_at),
        unique_key,
        bool(cancel_requested),
        True if rerun_on_loss is None else bool(rerun_on_loss),
        claim_token,
    )
    return task


#: Task(...) from the values of its fields in the dataclass's order, but ``files`` (left
#: at its default: a claimed row has no files loaded), through a same-slots twin class
#: (``bulk.builder``): a third of the time of the dataclass's own ``__init__``.
_build_task = builder(Task, [f.name for f in dataclasses.fields(Task) if f.name != "files"])


def sqlite_times() -> Callable[[Any], datetime | None]:
    """A converter of SQLite's stored time text (as SQLAlchemy or SQL functions wrote
    it) to aware UTC, for one batch of rows: the claim's times repeat (``executed_at``
    and ``heartbeat_at`` are one "now", ``run_at`` is ``created_at`` unless delayed),
    so each distinct text is parsed once (datetimes are immutable: shared safely)."""
    seen: dict[Any, datetime | None] = {None: None}

    def when(value: Any) -> datetime | None:
        try:
            return seen[value]
        except KeyError:
            parsed: datetime = _str_to_datetime(value).replace(tzinfo=UTC)
            seen[value] = parsed
            return parsed

    return when


def aware_times() -> Callable[[Any], datetime | None]:
    """The same for a driver's timezone-aware datetimes (PostgreSQL): in UTC."""
    seen: dict[Any, datetime | None] = {None: None}

    def when(value: Any) -> datetime | None:
        try:
            return seen[value]
        except KeyError:
            converted: datetime = value.astimezone(UTC)
            seen[value] = converted
            return converted

    return when


def task_from_row(row: Mapping[Any, Any], files: tuple[TaskFile, ...] = ()) -> Task:
    messages_raw = json.loads(row["messages"] or "[]")
    link_raw = json.loads(row["action_link"]) if row["action_link"] else None
    done, total = row["progress_done"], row["progress_total"]
    return Task(
        id=int(row["id"]),
        name=row["name"],
        handler=row["handler"],
        args=json.loads(row["args"]),
        status=TaskStatus(row["status"]),
        messages=tuple(Message.from_json(m) for m in messages_raw),
        created_at=row["created_at"],
        executed_at=row["executed_at"],
        finished_at=row["finished_at"],
        action_link=ActionLink.from_json(link_raw),
        queue=row["queue"],
        priority=int(row["priority"]),
        run_at=row["run_at"],
        attempts=int(row["attempts"]),
        max_attempts=int(row["max_attempts"]),
        timeout=row["timeout"],
        progress=Progress(done=int(done), total=None if total is None else int(total))
        if done is not None
        else None,
        error=row["error"],
        worker=row["worker"],
        heartbeat_at=row["heartbeat_at"],
        unique_key=row["unique_key"],
        cancel_requested=bool(row["cancel_requested"]),
        rerun_on_loss=bool(row.get("rerun_on_loss", True)),
        files=files,
        claim_token=row["claim_token"],
    )


def messages_json(messages: Any) -> str:
    return json.dumps([m.to_json() for m in messages], ensure_ascii=False, separators=(",", ":"))


def action_link_json(link: ActionLink | None) -> str | None:
    if link is None:
        return None
    return json.dumps(link.to_json(), ensure_ascii=False, separators=(",", ":"))


def filter_clause(flt: TaskFilter) -> ColumnElement[bool]:
    """The WHERE clause of a filter; every value is a bound parameter."""
    for text in (flt.name, flt.search, *flt.queues):
        if text:
            check_no_nul(text, "A filter")
    parts: list[ColumnElement[bool]] = []
    if flt.ids is not None:
        parts.append(T.id.in_(flt.ids) if flt.ids else false())
    if flt.statuses:
        parts.append(T.status.in_([s.value for s in flt.statuses]))
    if flt.name:
        parts.append(T.name.icontains(flt.name, autoescape=True))
    if flt.handler:
        parts.append(T.handler == flt.handler)
    if flt.queues:
        parts.append(T.queue.in_(flt.queues))
    if flt.created_after:
        parts.append(T.created_at >= flt.created_after)
    if flt.created_before:
        parts.append(T.created_at < flt.created_before)
    if flt.finished_after:
        parts.append(T.finished_at >= flt.finished_after)
    if flt.finished_before:
        parts.append(T.finished_at < flt.finished_before)
    if flt.search:
        parts.append(
            or_(
                T.name.icontains(flt.search, autoescape=True),
                T.handler.icontains(flt.search, autoescape=True),
                T.args.icontains(flt.search, autoescape=True),
            )
        )
    return and_(*parts) if parts else and_(True)


def check_sort(sort: Sort) -> Sort:
    if sort.field not in SORT_FIELDS:
        raise InvalidInput(
            f"Cannot sort by {sort.field!r}; sort by one of: {', '.join(SORT_FIELDS)}."
        )
    return sort


def encode_cursor(sort: Sort, value: Any, task_id: int) -> str:
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps([sort.field, sort.descending, value, task_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(sort: Sort, cursor: str) -> tuple[Any, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        field, descending, value, task_id = json.loads(base64.urlsafe_b64decode(padded))
        if field != sort.field or descending != sort.descending or not _is_int(task_id):
            raise ValueError("cursor of another sort")
        if field in ("created_at", "run_at"):
            value = datetime.fromisoformat(value)
        elif field in ("id", "priority"):
            if not _is_int(value):
                raise TypeError("a number was expected")
        elif not isinstance(value, str):  # name, status, queue, handler
            raise TypeError("text was expected")
        return value, task_id
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise InvalidInput(
            "The page cursor is not valid for this sort; start again from the first page."
        ) from None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def keyset_clause(sort: Sort, value: Any, task_id: int) -> ColumnElement[bool]:
    column = T[sort.field]
    if sort.field == "id":
        return T.id < task_id if sort.descending else T.id > task_id
    if sort.descending:
        return or_(column < value, and_(column == value, T.id < task_id))
    return or_(column > value, and_(column == value, T.id > task_id))
