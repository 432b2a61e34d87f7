"""The task values: a row of the table and what enqueue takes. Frozen, no I/O."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .status import TaskStatus

JSONValue = Any  # a value json.dumps accepts: dict, list, str, int, float, bool, None

MESSAGE_LEVELS = ("debug", "info", "success", "warning", "error")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True, slots=True)
class Message:
    """A message a handler added: text, a level and a UTC time."""

    text: str
    level: str = "info"
    time: datetime = field(default_factory=utc_now)

    def to_json(self) -> dict[str, str]:
        return {"text": self.text, "level": self.level, "time": self.time.isoformat()}

    @classmethod
    def from_json(cls, data: Any) -> Message:
        if isinstance(data, str):  # tolerate plain strings, as the seed stored them
            return cls(text=data, level="info", time=datetime.fromtimestamp(0, UTC))
        when = data.get("time")
        return cls(
            text=str(data.get("text", "")),
            level=str(data.get("level", "info")),
            time=datetime.fromisoformat(when) if when else datetime.fromtimestamp(0, UTC),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class ActionLink:
    """The seed's action link: ``{"text", "route_path", "route_params"}``."""

    text: str | None = None
    route_path: str | None = None
    route_params: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "route_path": self.route_path, "route_params": self.route_params}

    @classmethod
    def from_json(cls, data: Any) -> ActionLink | None:
        if not isinstance(data, dict):
            return None
        params = data.get("route_params")
        return cls(
            text=data.get("text"),
            route_path=data.get("route_path"),
            route_params=params if isinstance(params, dict) else None,
        )

    @property
    def is_empty(self) -> bool:
        return self.route_path is None and self.text is None


@dataclass(frozen=True, kw_only=True, slots=True)
class Progress:
    done: int
    total: int | None = None

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return max(0.0, min(1.0, self.done / self.total))


@dataclass(frozen=True, kw_only=True, slots=True)
class TaskFile:
    """A file a task attached (content is loaded only on download)."""

    task_id: int
    filename: str
    content_type: str
    size: int
    created_at: datetime


@dataclass(frozen=True, kw_only=True, slots=True)
class Task:
    """One row of the task table, as read. Change it through the repository."""

    id: int
    name: str
    handler: str
    args: JSONValue
    status: TaskStatus
    messages: tuple[Message, ...]
    created_at: datetime
    executed_at: datetime | None
    finished_at: datetime | None
    action_link: ActionLink | None
    queue: str
    priority: int
    run_at: datetime
    attempts: int
    max_attempts: int
    timeout: float | None
    progress: Progress | None
    error: str | None
    worker: str | None
    heartbeat_at: datetime | None
    unique_key: str | None
    cancel_requested: bool = False
    #: False when the handler must not run again after its worker was lost.
    rerun_on_loss: bool = True
    files: tuple[TaskFile, ...] = ()
    #: The token of the claim this copy was read under (worker-side only; never shown).
    claim_token: str | None = None

    def replace(self, **changes: Any) -> Task:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The row as JSON-ready data: the form the CLI's ``--json`` and the API print."""

        def ts(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "id": self.id,
            "name": self.name,
            "handler": self.handler,
            "args": self.args,
            "status": self.status.value,
            "messages": [m.to_json() for m in self.messages],
            "created_at": ts(self.created_at),
            "executed_at": ts(self.executed_at),
            "finished_at": ts(self.finished_at),
            "action_link": self.action_link.to_json()
            if self.action_link
            else {"text": None, "route_path": None, "route_params": None},
            "queue": self.queue,
            "priority": self.priority,
            "run_at": ts(self.run_at),
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "timeout": self.timeout,
            "progress": {"done": self.progress.done, "total": self.progress.total}
            if self.progress
            else None,
            "error": self.error,
            "worker": self.worker,
            "heartbeat_at": ts(self.heartbeat_at),
            "unique_key": self.unique_key,
            "cancel_requested": self.cancel_requested,
            "files": [
                {"filename": f.filename, "content_type": f.content_type, "size": f.size}
                for f in self.files
            ],
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class NewTask:
    """A validated task to insert (see :func:`tasktable.core.validation.new_task`)."""

    handler: str
    args: JSONValue
    name: str
    queue: str = "default"
    priority: int = 0
    run_at: datetime | None = None
    max_attempts: int = 1
    timeout: float | None = None
    unique_key: str | None = None
    rerun_on_loss: bool = True
