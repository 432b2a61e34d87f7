"""Run one task: resolve its handler, run it, and say what came of it. Never raises.

The executor knows nothing of claims or loops; it takes a claimed :class:`Task`
and a :class:`Reporter` and returns an :class:`Outcome`, so the same code runs
in a slot thread, a slot process, or inline in the caller's process.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import traceback
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from ..context import Reporter, Retry, RunningTask
from ..core.handlers import Allowlist
from ..core.retry import backoff
from ..core.status import TaskStatus
from ..core.task import ActionLink, Message, Progress, Task, utc_now
from ..errors import HandlerError
from ..handler import handler_defaults, load_handler
from ..storage.base import Outcome

log = logging.getLogger("tasktable.worker")


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip()
    return text if text else type(exc).__name__


def execute(
    task: Task,
    reporter: Reporter,
    *,
    allowlist: Allowlist,
    max_file_bytes: int,
    loop: asyncio.AbstractEventLoop | None = None,
    on_start: Callable[[float], None] | None = None,
) -> tuple[Outcome, Any]:
    """Run ``task`` and return (outcome, the handler's return value).

    ``on_start`` is called with the handler's own timeout once it is loaded,
    before it runs, when it declares one (a worker uses it when the task row has
    no timeout); not at all for a handler without a timeout, so that the usual
    run costs a slot no message besides its outcome.
    """
    running = RunningTask(task, reporter, max_file_bytes=max_file_bytes)
    try:
        handler = load_handler(task.handler, allowlist)
    except HandlerError as exc:
        log.error("Task %s (%s): %s", task.id, task.name, exc)
        running.messages.append(Message(text=str(exc), level="error"))
        return _outcome(running, TaskStatus.ERROR, error=str(exc)), None
    if on_start is not None:
        timeout = handler_defaults(handler)[2]
        if timeout:
            on_start(timeout)
    try:
        result = handler.run_task(running)
        if inspect.isawaitable(result):
            result = _await(result, loop)
    except Retry as exc:
        return _retry(running, exc), None
    except Exception as exc:
        trace = traceback.format_exc()
        log.error("Task %s (%s) failed: %s\n%s", task.id, task.name, _error_text(exc), trace)
        running.messages.append(Message(text=_error_text(exc), level="error"))
        return failed(
            task,
            running.messages,
            trace,
            progress=running.progress,
            action_link=running.action_link,
        ), None
    if running.failure is not None:
        log.error("Task %s (%s) failed: %s", task.id, task.name, running.failure)
        return _outcome(running, TaskStatus.ERROR, error=running.failure), result
    return _outcome(running, TaskStatus.SUCCESS), result


def failed(
    task: Task,
    messages: Sequence[Message],
    error: str,
    *,
    progress: Progress | None = None,
    action_link: ActionLink | None = None,
) -> Outcome:
    """A failed run: another attempt after a back-off while attempts remain, else ``error``.

    Used for exceptions, timeouts and crashed slot processes alike.
    """
    notes = list(messages)
    if task.attempts < task.max_attempts:
        delay = backoff(task.attempts)
        notes.append(
            Message(
                text=f"Attempt {task.attempts} of {task.max_attempts} failed; "
                f"retrying in {delay.total_seconds():.0f}s.",
                level="warning",
            )
        )
        return Outcome(
            status=TaskStatus.PENDING,
            messages=tuple(notes),
            error=error,
            progress=progress,
            action_link=action_link,
            run_at=utc_now() + delay,
        )
    return Outcome(
        status=TaskStatus.ERROR,
        messages=tuple(notes),
        error=error,
        progress=progress,
        action_link=action_link,
    )


def _await(awaitable: Any, loop: asyncio.AbstractEventLoop | None) -> Any:
    async def wrapper() -> Any:
        return await awaitable

    if loop is None:
        return asyncio.run(wrapper())
    return loop.run_until_complete(wrapper())


def _retry(running: RunningTask, exc: Retry) -> Outcome:
    task = running.record
    if task.attempts >= task.max_attempts:
        text = f"Retry asked after attempt {task.attempts} of {task.max_attempts}; giving up."
        running.messages.append(Message(text=exc.reason or text, level="error"))
        return _outcome(running, TaskStatus.ERROR, error=text)
    note = exc.reason or f"Retry asked; next run in {exc.delay.total_seconds():g}s."
    running.messages.append(Message(text=note, level="info"))
    return _outcome(running, TaskStatus.PENDING, delay=exc.delay)


def _outcome(
    running: RunningTask,
    status: TaskStatus,
    *,
    error: str | None = None,
    delay: timedelta | None = None,
) -> Outcome:
    return Outcome(
        status=status,
        messages=tuple(running.messages),
        error=error,
        progress=running.progress,
        action_link=running.action_link,
        run_at=utc_now() + delay if delay is not None else None,
    )
