"""Rows to values, filters to WHERE clauses, and keyset cursors."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_

from ..core.status import TaskStatus
from ..core.task import ActionLink, Message, Progress, Task, TaskFile
from ..core.validation import check_no_nul
from ..errors import InvalidInput
from .base import SORT_FIELDS, Sort, TaskFilter
from .schema import task_table

T = task_table.c


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
