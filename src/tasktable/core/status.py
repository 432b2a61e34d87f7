"""The task status machine, kept in one place and drawn the same way in docs/.

::

    pending --claim--> running --return--> success
       |                  |----raise/fail/timeout--> error
       |                  |----cancel (handler stops, or is stopped)--> cancelled
       |                  `--retry/release/rescue--> pending
       `--cancel--> cancelled
    error, cancelled --retry--> pending

A cancel moves a ``pending`` task to ``cancelled`` at once. A ``running`` task
gets a cancel request instead, and ``running -> cancelled`` (a move the
product contract's list leaves out, added on purpose) is made when that
request is honoured (the handler saw ``task.cancel_requested`` and ended) or
enforced (the worker stopped the run after ``TASKTABLE_CANCEL_GRACE``), and
when a task asked to cancel would otherwise go back to ``pending`` (a retry,
a release at shutdown, a rescue). Why not ``error``: someone asked the task
to stop and it stopped, which is not a failure to investigate; it reads
``cancelled``, and can be retried like any cancelled task.
"""

from __future__ import annotations

import enum

from ..errors import InvalidInput


class TaskStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    ERROR = "error"
    CANCELLED = "cancelled"

    @classmethod
    def parse(cls, value: str) -> TaskStatus:
        try:
            return cls(value.strip().lower())
        except ValueError:
            allowed = ", ".join(s.value for s in cls)
            raise InvalidInput(f"Unknown status {value!r}; use one of: {allowed}.") from None

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset({TaskStatus.SUCCESS, TaskStatus.ERROR, TaskStatus.CANCELLED})

#: Every allowed move. Each one is made in storage by a single conditional write.
TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.PENDING: frozenset({TaskStatus.RUNNING, TaskStatus.CANCELLED}),
    TaskStatus.RUNNING: frozenset(
        {TaskStatus.SUCCESS, TaskStatus.ERROR, TaskStatus.CANCELLED, TaskStatus.PENDING}
    ),
    TaskStatus.SUCCESS: frozenset(),
    TaskStatus.ERROR: frozenset({TaskStatus.PENDING}),
    TaskStatus.CANCELLED: frozenset({TaskStatus.PENDING}),
}

#: Statuses an explicit retry may move back to pending.
RETRYABLE = frozenset({TaskStatus.ERROR, TaskStatus.CANCELLED})


def can_move(src: TaskStatus, dst: TaskStatus) -> bool:
    return dst in TRANSITIONS[src]
