"""What a slot's runner and the worker say to each other: small typed events.

A process slot sends them over a pipe as JSON (never pickle: a handler's
objects do not cross the process boundary, only data the table could store);
a thread slot passes the same dataclasses through a queue. Either way the
worker (the parent) does every database write.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..core.status import TaskStatus
from ..core.task import ActionLink, Message, Progress, Task
from ..storage.base import Outcome


@dataclass(frozen=True, kw_only=True)
class Started:
    """The handler was loaded and declares a ``timeout`` (seconds), which applies when
    the task row has none. Sent only by such handlers, before they run; a run
    without it says nothing until its events and outcome."""

    task_id: int
    timeout: float | None


@dataclass(frozen=True, kw_only=True)
class Report:
    """Live progress, messages and action link (throttled by the handler side)."""

    task_id: int
    progress: Progress | None
    messages: tuple[Message, ...]
    link: ActionLink | None


@dataclass(frozen=True, kw_only=True)
class Attach:
    task_id: int
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, kw_only=True)
class Done:
    """The run ended; ``saw_cancel`` says whether the handler was told of a cancel request."""

    task_id: int
    outcome: Outcome
    saw_cancel: bool


@dataclass(frozen=True, kw_only=True)
class LogLine:
    """A log record of the child process, written to the worker's log."""

    level: int
    name: str
    text: str


Event = Started | Report | Attach | Done | LogLine


# -- JSON forms -------------------------------------------------------------------
def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _progress(data: Any) -> Progress | None:
    if not data:
        return None
    return Progress(done=int(data["done"]), total=data.get("total"))


def _progress_json(progress: Progress | None) -> dict[str, Any] | None:
    return None if progress is None else {"done": progress.done, "total": progress.total}


def task_to_json(task: Task) -> dict[str, Any]:
    """The claimed row as the child needs it (the claim token stays in the parent)."""
    data = task.to_json()
    data.pop("files", None)
    return data


def task_from_json(data: dict[str, Any]) -> Task:
    return Task(
        id=int(data["id"]),
        name=data["name"],
        handler=data["handler"],
        args=data["args"],
        status=TaskStatus(data["status"]),
        messages=tuple(Message.from_json(m) for m in data["messages"]),
        created_at=_parse_time(data["created_at"]),  # type: ignore[arg-type]
        executed_at=_parse_time(data["executed_at"]),
        finished_at=_parse_time(data["finished_at"]),
        action_link=ActionLink.from_json(data["action_link"]),
        queue=data["queue"],
        priority=int(data["priority"]),
        run_at=_parse_time(data["run_at"]),  # type: ignore[arg-type]
        attempts=int(data["attempts"]),
        max_attempts=int(data["max_attempts"]),
        timeout=data["timeout"],
        progress=_progress(data["progress"]),
        error=data["error"],
        worker=data["worker"],
        heartbeat_at=_parse_time(data["heartbeat_at"]),
        unique_key=data["unique_key"],
        cancel_requested=bool(data["cancel_requested"]),
    )


def outcome_to_json(outcome: Outcome) -> dict[str, Any]:
    return {
        "status": outcome.status.value,
        "messages": [m.to_json() for m in outcome.messages],
        "error": outcome.error,
        "progress": _progress_json(outcome.progress),
        "action_link": outcome.action_link.to_json() if outcome.action_link else None,
        "run_at": _time(outcome.run_at),
        "charge_attempt": outcome.charge_attempt,
    }


def outcome_from_json(data: dict[str, Any]) -> Outcome:
    return Outcome(
        status=TaskStatus(data["status"]),
        messages=tuple(Message.from_json(m) for m in data["messages"]),
        error=data["error"],
        progress=_progress(data["progress"]),
        action_link=ActionLink.from_json(data["action_link"]),
        run_at=_parse_time(data["run_at"]),
        charge_attempt=bool(data["charge_attempt"]),
    )


def encode_event(event: Event) -> bytes:
    data: dict[str, Any]
    if isinstance(event, Started):
        data = {"op": "started", "task_id": event.task_id, "timeout": event.timeout}
    elif isinstance(event, Report):
        data = {
            "op": "report",
            "task_id": event.task_id,
            "progress": _progress_json(event.progress),
            "messages": [m.to_json() for m in event.messages],
            "link": event.link.to_json() if event.link else None,
        }
    elif isinstance(event, Attach):
        data = {
            "op": "attach",
            "task_id": event.task_id,
            "filename": event.filename,
            "content_type": event.content_type,
            "data": base64.b64encode(event.data).decode("ascii"),
        }
    elif isinstance(event, Done):
        data = {
            "op": "done",
            "task_id": event.task_id,
            "outcome": outcome_to_json(event.outcome),
            "saw_cancel": event.saw_cancel,
        }
    else:
        data = {"op": "log", "level": event.level, "name": event.name, "text": event.text}
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decode_event(raw: bytes) -> Event:
    data = json.loads(raw)
    op = data["op"]
    if op == "started":
        return Started(task_id=int(data["task_id"]), timeout=data["timeout"])
    if op == "report":
        return Report(
            task_id=int(data["task_id"]),
            progress=_progress(data["progress"]),
            messages=tuple(Message.from_json(m) for m in data["messages"]),
            link=ActionLink.from_json(data["link"]),
        )
    if op == "attach":
        return Attach(
            task_id=int(data["task_id"]),
            filename=data["filename"],
            content_type=data["content_type"],
            data=base64.b64decode(data["data"]),
        )
    if op == "done":
        return Done(
            task_id=int(data["task_id"]),
            outcome=outcome_from_json(data["outcome"]),
            saw_cancel=bool(data["saw_cancel"]),
        )
    if op == "log":
        return LogLine(level=int(data["level"]), name=str(data["name"]), text=str(data["text"]))
    raise ValueError(f"unknown event {op!r}")


def encode_command(op: str, **fields: Any) -> bytes:
    return json.dumps({"op": op, **fields}, separators=(",", ":")).encode("utf-8")


def decode_command(raw: bytes) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(raw)
    return data
