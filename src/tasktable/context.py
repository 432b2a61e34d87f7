"""The task as a handler sees it: data, and the few things a handler may do.

``run_task(self, task)`` receives a :class:`RunningTask`. Messages, progress,
the action link and files go through a :class:`Reporter`: straight to the
database in a worker (each write fenced by the claim), to memory when the
handler runs inline.
"""

from __future__ import annotations

import mimetypes
import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from .core.durations import parse_duration
from .core.task import ActionLink, Message, Progress, Task
from .core.validation import validate_level
from .errors import InvalidInput

_BAD_FILENAME = re.compile(r"[\x00-\x1f\x7f/\\]")
REPORT_INTERVAL = 0.5  # seconds between live progress writes


class Reporter(Protocol):
    def report(
        self, progress: Progress | None, messages: tuple[Message, ...], link: ActionLink | None
    ) -> bool:
        """Save live state; False when the task's claim was lost."""

    def attach(self, filename: str, content_type: str, data: bytes) -> bool:
        """Store a file; False when the task's claim was lost."""

    def cancel_requested(self) -> bool:
        """Whether someone asked to cancel this running task."""


class Retry(Exception):
    """Raise ``Retry(in_="30s")`` from a handler to run the task again later.

    It counts as an attempt; once ``max_attempts`` are used the task ends ``error``.
    """

    def __init__(self, in_: str | float | timedelta = 0, reason: str = "") -> None:
        self.delay = parse_duration(in_)
        self.reason = reason
        super().__init__(reason or f"retry in {self.delay.total_seconds():g}s")


class RunningTask:
    """What ``run_task`` receives: the task's data and what a handler may do with it."""

    def __init__(self, task: Task, reporter: Reporter, *, max_file_bytes: int) -> None:
        self._task = task
        self._reporter = reporter
        self._max_file_bytes = max_file_bytes
        self.messages: list[Message] = list(task.messages)
        self.progress: Progress | None = None
        self.action_link: ActionLink | None = task.action_link
        self.failure: str | None = None
        self._last_report = 0.0

    # -- the data ---------------------------------------------------------------
    @property
    def id(self) -> int:
        return self._task.id

    @property
    def name(self) -> str:
        return self._task.name

    @property
    def args(self) -> Any:
        return self._task.args

    @property
    def handler(self) -> str:
        return self._task.handler

    @property
    def queue(self) -> str:
        return self._task.queue

    @property
    def attempts(self) -> int:
        """Which run this is: 1 for the first."""
        return self._task.attempts

    @property
    def max_attempts(self) -> int:
        return self._task.max_attempts

    @property
    def record(self) -> Task:
        """The row as it was claimed."""
        return self._task

    @property
    def cancel_requested(self) -> bool:
        """True once someone asked to cancel this task: stop early if you can."""
        return self._reporter.cancel_requested()

    # -- what a handler may do --------------------------------------------------
    def add_message(self, text: str, level: str = "info") -> None:
        """Add a message, saved with the task (shown in the dashboard, CLI and API)."""
        self.messages.append(Message(text=str(text), level=validate_level(level)))
        self._report(force=False)

    def fail(self, message: str) -> None:
        """End the task ``error`` with ``message`` when ``run_task`` returns, without raising."""
        self.failure = str(message)
        self.messages.append(Message(text=self.failure, level="error"))

    def set_progress(self, done: int, total: int | None = None) -> None:
        if done < 0 or (total is not None and total < 0):
            raise InvalidInput("Progress cannot be negative.")
        self.progress = Progress(done=int(done), total=None if total is None else int(total))
        self._report(force=False)

    def set_action_link(
        self, text: str, route_path: str, route_params: dict[str, Any] | None = None
    ) -> None:
        """The seed's action link, e.g. ``("Download CSV", "files/orders.csv")``."""
        self.action_link = ActionLink(text=text, route_path=route_path, route_params=route_params)
        self._report(force=True)

    def attach_file(self, path_or_bytes: str | Path | bytes, filename: str | None = None) -> str:
        """Store a file with the task for download from the dashboard and API.

        Returns the stored file name. Attaching the same name again replaces it.
        """
        if isinstance(path_or_bytes, bytes | bytearray):
            if not filename:
                raise InvalidInput("attach_file needs a filename when given bytes.")
            data = bytes(path_or_bytes)
        else:
            source = Path(path_or_bytes)
            data = source.read_bytes()
            filename = filename or source.name
        assert filename is not None
        if not filename or len(filename) > 255 or _BAD_FILENAME.search(filename):
            raise InvalidInput(f"File name {filename!r} is not allowed (no slashes, 1-255 chars).")
        if len(data) > self._max_file_bytes:
            raise InvalidInput(
                f"File {filename!r} is {len(data)} bytes, more than the limit of "
                f"{self._max_file_bytes} (TASKTABLE_MAX_FILE_BYTES)."
            )
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        self._reporter.attach(filename, content_type, data)
        return filename

    def _report(self, *, force: bool) -> None:
        now = time.monotonic()
        if force or now - self._last_report >= REPORT_INTERVAL:
            self._last_report = now
            self._reporter.report(self.progress, tuple(self.messages), self.action_link)
