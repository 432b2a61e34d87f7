"""The task status machine, kept in one place and drawn the same way in docs/.

::

    pending --claim--> running --return--> success
       |                  |----raise/fail/timeout--> error
       |                  |----cancel (handler stops, or is stopped)--> cancelled
       |                  `--retry/release/rescue--> pending
       `--cancel--> cancelled
    error, cancelled --retry--> pending
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
