"""What a slot's runner and the worker say to each other: small typed events.

A process slot sends them over a pipe as JSON (never pickle: a handler's
objects do not cross the process boundary, only data the table could store);
a thread slot passes the same dataclasses through a queue. Either way the
worker (the parent) does every database write.

On the pipe, each message is one frame in :class:`multiprocessing.connection.
Connection`'s format (a 4-byte big-endian length, then the JSON). The two
messages of every run, the ``run`` command and its ``Done`` event, travel as
JSON arrays, fields in a fixed order (:func:`encode_run`, :func:`encode_done`):
cheaper to build and parse than objects. Several ``run`` commands may be sent
in one write: the slot process runs them in order, each as soon as the one
before has said ``Done`` (``["skipped", id]`` for one it was told not to start). Every other message (the hello,
``stop``, ``Started``, ``Report``, ``Attach``, ``LogLine``) is a JSON object
with an ``op``; :func:`decode_event` reads both forms. :class:`FrameReader`
reads frames from a file descriptor, taking several per ``read`` when they
are there.
"""

from __future__ import annotations

import base64
import json
import os
import select
import time
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
class Skipped:
    """A task queued behind another in a slot process (``ProcessRunner.begin(task,
    then=...)``) that the process did not start, because the worker asked it to hold
    (``ProcessRunner.hold``): it never ran."""

    task_id: int


@dataclass(frozen=True, kw_only=True)
class LogLine:
    """A log record of the child process, written to the worker's log."""

    level: int
    name: str
    text: str


Event = Started | Report | Attach | Done | Skipped | LogLine


# -- JSON forms -------------------------------------------------------------------
#: The text of recent datetimes, by identity (an entry holds its datetime, so that its
#: id is not reused meanwhile): the tasks of one claim share their ``executed_at`` and
#: ``heartbeat_at`` objects (see ``storage/rows.py``), and the run command of each
#: would format them again (a fifth of its cost).
_ISO: dict[int, tuple[datetime, str]] = {}
_ISO_SIZE = 256


def _time(value: datetime | None) -> str | None:
    if value is None:
        return None
    hit = _ISO.get(id(value))
    if hit is not None and hit[0] is value:
        return hit[1]
    text = value.isoformat()
    if len(_ISO) >= _ISO_SIZE:
        _ISO.clear()
    _ISO[id(value)] = (value, text)
    return text


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
    elif isinstance(event, Skipped):
        data = {"op": "skipped", "task_id": event.task_id}
    else:
        data = {"op": "log", "level": event.level, "name": event.name, "text": event.text}
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decode_event(raw: bytes) -> Event:
    data = json.loads(raw.decode("utf-8"))  # from bytes, loads() first guesses the encoding
    if isinstance(data, list):
        return _event_from_array(data)
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
    if op == "skipped":
        return Skipped(task_id=int(data["task_id"]))
    if op == "log":
        return LogLine(level=int(data["level"]), name=str(data["name"]), text=str(data["text"]))
    raise ValueError(f"unknown event {op!r}")


def encode_command(op: str, **fields: Any) -> bytes:
    return json.dumps({"op": op, **fields}, separators=(",", ":")).encode("utf-8")


def decode_command(raw: bytes) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(raw.decode("utf-8"))
    return data


# -- the compact forms of a run's two messages -------------------------------------
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_SUCCESS = TaskStatus.SUCCESS


def _messages_array(messages: tuple[Message, ...]) -> list[list[str]]:
    return [[m.text, m.level, m.time.isoformat()] for m in messages]


def _messages_from_array(data: list[list[str]]) -> tuple[Message, ...]:
    if not data:
        return ()
    return tuple(
        Message(text=text, level=level, time=datetime.fromisoformat(when))
        for text, level, when in data
    )


def _link_array(link: ActionLink | None) -> list[Any] | None:
    return None if link is None else [link.text, link.route_path, link.route_params]


def _link_from_array(data: list[Any] | None) -> ActionLink | None:
    if data is None:
        return None
    text, route_path, route_params = data
    return ActionLink(text=text, route_path=route_path, route_params=route_params)


def encode_run(task: Task) -> bytes:
    """The ``run`` command: ``["run", <the row's fields in Task's order>]``, without
    the claim token (it stays in the parent) and the files (not loaded)."""
    ts = _time
    progress = task.progress
    return _dumps(
        [
            "run",
            task.id,
            task.name,
            task.handler,
            task.args,
            task.status.value,
            _messages_array(task.messages),
            ts(task.created_at),
            ts(task.executed_at),
            ts(task.finished_at),
            _link_array(task.action_link),
            task.queue,
            task.priority,
            ts(task.run_at),
            task.attempts,
            task.max_attempts,
            task.timeout,
            None if progress is None else [progress.done, progress.total],
            task.error,
            task.worker,
            ts(task.heartbeat_at),
            task.unique_key,
            task.cancel_requested,
            task.rerun_on_loss,
        ]
    ).encode("utf-8")


def task_from_run(data: list[Any]) -> Task:
    """The task of a decoded ``run`` command (see :func:`encode_run`)."""
    (
        _op,
        task_id,
        name,
        handler,
        args,
        status,
        messages,
        created_at,
        executed_at,
        finished_at,
        link,
        queue,
        priority,
        run_at,
        attempts,
        max_attempts,
        timeout,
        progress,
        error,
        worker,
        heartbeat_at,
        unique_key,
        cancel_requested,
        rerun_on_loss,
    ) = data
    parse = _parse_time
    return Task(
        id=task_id,
        name=name,
        handler=handler,
        args=args,
        status=TaskStatus(status),
        messages=_messages_from_array(messages),
        created_at=parse(created_at),  # type: ignore[arg-type]
        executed_at=parse(executed_at),
        finished_at=parse(finished_at),
        action_link=_link_from_array(link),
        queue=queue,
        priority=priority,
        run_at=parse(run_at),  # type: ignore[arg-type]
        attempts=attempts,
        max_attempts=max_attempts,
        timeout=timeout,
        progress=None if progress is None else Progress(done=progress[0], total=progress[1]),
        error=error,
        worker=worker,
        heartbeat_at=parse(heartbeat_at),
        unique_key=unique_key,
        cancel_requested=cancel_requested,
        rerun_on_loss=rerun_on_loss,
    )


def encode_done(event: Done) -> bytes:
    """``Done`` as ``["done", task_id, saw_cancel, status, messages, error, progress,
    action_link, run_at, charge_attempt]``; a plain success with nothing to add is
    just ``["done", task_id, saw_cancel]``."""
    outcome = event.outcome
    if (
        outcome.status is _SUCCESS
        and not outcome.messages
        and outcome.error is None
        and outcome.progress is None
        and outcome.action_link is None
        and outcome.run_at is None
        and outcome.charge_attempt
    ):
        return _dumps(["done", event.task_id, event.saw_cancel]).encode("utf-8")
    progress = outcome.progress
    return _dumps(
        [
            "done",
            event.task_id,
            event.saw_cancel,
            outcome.status.value,
            _messages_array(outcome.messages),
            outcome.error,
            None if progress is None else [progress.done, progress.total],
            _link_array(outcome.action_link),
            _time(outcome.run_at),
            outcome.charge_attempt,
        ]
    ).encode("utf-8")


def encode_skipped(event: Skipped) -> bytes:
    return _dumps(["skipped", event.task_id]).encode("utf-8")


def _event_from_array(data: list[Any]) -> Event:
    if data[0] == "skipped":
        return Skipped(task_id=data[1])
    if data[0] != "done":
        raise ValueError(f"unknown event {data[0]!r}")
    if len(data) == 3:
        return Done(
            task_id=data[1], outcome=Outcome(status=_SUCCESS, messages=()), saw_cancel=data[2]
        )
    _op, task_id, saw_cancel, status, messages, error, progress, link, run_at, charge = data
    return Done(
        task_id=task_id,
        outcome=Outcome(
            status=TaskStatus(status),
            messages=_messages_from_array(messages),
            error=error,
            progress=None if progress is None else Progress(done=progress[0], total=progress[1]),
            action_link=_link_from_array(link),
            run_at=_parse_time(run_at),
            charge_attempt=charge,
        ),
        saw_cancel=saw_cancel,
    )


def decode_message(raw: bytes) -> list[Any] | dict[str, Any]:
    """A command as the slot process reads it: a ``run`` array, or an object with an ``op``."""
    data: list[Any] | dict[str, Any] = json.loads(raw.decode("utf-8"))
    return data


# -- framing -------------------------------------------------------------------------
_READ_SIZE = 1 << 16


def frame(raw: bytes) -> bytes:
    """``raw`` with its header, as ``Connection.send_bytes`` writes it."""
    size = len(raw)
    if size > 0x7FFFFFFF:
        return b"\xff\xff\xff\xff" + size.to_bytes(8, "big") + raw
    return size.to_bytes(4, "big") + raw


class FrameReader:
    """Reads :class:`~multiprocessing.connection.Connection` frames from a pipe's fd.

    One ``read`` takes whatever is there (often several frames: a run's log lines
    and its outcome), where ``Connection.recv_bytes`` costs two reads per frame and
    its ``poll`` builds a selector per call. The reader does not own the fd; one
    thread uses it.
    """

    __slots__ = ("_buffer", "_fd", "_poller")

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = bytearray()
        self._poller = select.poll()
        self._poller.register(fd, select.POLLIN)

    def _take(self) -> bytes | None:
        buffer = self._buffer
        have = len(buffer)
        if have < 4:
            return None
        size = int.from_bytes(buffer[:4], "big", signed=True)
        start = 4
        if size == -1:  # Connection's header for a frame over 2 GiB
            if have < 12:
                return None
            size = int.from_bytes(buffer[4:12], "big")
            start = 12
        elif size < 0:
            raise OSError(f"bad frame length {size}")
        end = start + size
        if have < end:
            return None
        frame = bytes(buffer[start:end])
        del buffer[:end]
        return frame

    def read(self, timeout: float | None) -> bytes | None:
        """The next frame; None when none came within ``timeout`` seconds (None: wait
        as long as it takes). Raises :class:`EOFError` once the other end has closed
        (a partial frame then counts as none)."""
        frame = self._take()
        if frame is not None:
            return frame
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if deadline is not None:
                left = max(0.0, deadline - time.monotonic())
                # poll() takes milliseconds; round up so a short wait is not a busy spin.
                if not self._poller.poll(int(left * 1000) + (left > 0)):
                    return None
            chunk = os.read(self._fd, _READ_SIZE)
            if not chunk:
                raise EOFError
            self._buffer += chunk
            frame = self._take()
            if frame is not None:
                return frame
