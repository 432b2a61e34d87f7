"""The one exception base of tasktable and its few precise subclasses.

Every error a user can cause (bad input, a missing schema, an unreachable
database) is a :class:`TaskTableError` whose message is one sentence a person
can act on. The CLI prints that sentence; the REST API returns it as JSON.
"""

from __future__ import annotations


class TaskTableError(Exception):
    """Base class of every error tasktable raises on purpose."""

    code = "error"


class InvalidInput(TaskTableError):
    """A value given by the caller is not acceptable (args, duration, status...)."""

    code = "invalid_input"


class HandlerError(TaskTableError):
    """A handler path does not import, names no handler, or is not allowed."""

    code = "invalid_handler"


class HandlerNotAllowed(HandlerError):
    """The handler path is outside ``TASKTABLE_HANDLERS``; nothing was imported."""

    code = "handler_not_allowed"


class TaskNotFound(TaskTableError):
    """No task has the given id."""

    code = "not_found"

    def __init__(self, task_id: int) -> None:
        super().__init__(f"No task with id {task_id}.")
        self.task_id = task_id


class InvalidTransition(TaskTableError):
    """The task's status does not allow the requested move (e.g. retry a pending task)."""

    code = "invalid_transition"


class DatabaseError(TaskTableError):
    """The database could not be reached or refused a statement."""

    code = "database_error"


class SchemaMissing(DatabaseError):
    """The database has no tasktable schema, or an older one: run ``tasktable migrate``."""

    code = "schema_missing"
