"""Run a handler in the caller's process: the seed's "run within the same request".

Same semantics as in a worker (messages, fail, progress, action link, files,
exceptions ending ``error``), but nothing is written to the table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .core.status import TaskStatus
from .core.task import ActionLink, Message, Progress


@dataclass
class InlineResult:
    """What running a handler inline came to."""

    name: str
    handler: str
    args: Any
    status: TaskStatus = TaskStatus.RUNNING
    messages: tuple[Message, ...] = ()
    error: str | None = None
    progress: Progress | None = None
    action_link: ActionLink | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    return_value: Any = None

    @property
    def ok(self) -> bool:
        return self.status is TaskStatus.SUCCESS


class MemoryReporter:
    """A reporter that keeps everything in memory (inline runs, tests)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.content_types: dict[str, str] = {}
        self.reports = 0
        self.cancel = False

    def report(
        self, progress: Progress | None, messages: tuple[Message, ...], link: ActionLink | None
    ) -> bool:
        self.reports += 1
        return True

    def attach(self, filename: str, content_type: str, data: bytes) -> bool:
        self.files[filename] = data
        self.content_types[filename] = content_type
        return True

    def cancel_requested(self) -> bool:
        return self.cancel
