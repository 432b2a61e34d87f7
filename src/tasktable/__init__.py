"""tasktable: durable background tasks for Python applications, kept in a database table."""

from typing import TYPE_CHECKING, Any

from .context import Retry, RunningTask
from .core.status import TaskStatus
from .core.task import ActionLink, Message, Progress, Task
from .errors import TaskTableError
from .handler import TaskHandler, handler
from .inline import InlineResult
from .notice import Notice
from .settings import Settings

if TYPE_CHECKING:
    from .app import TaskTable

__version__ = "0.1.0"

__all__ = [
    "ActionLink",
    "InlineResult",
    "Message",
    "Notice",
    "Progress",
    "Retry",
    "RunningTask",
    "Settings",
    "Task",
    "TaskHandler",
    "TaskStatus",
    "TaskTable",
    "TaskTableError",
    "__version__",
    "handler",
]


def __getattr__(name: str) -> Any:
    """``TaskTable`` on first use: it brings SQLAlchemy, which a slot process never needs
    (a handler module doing ``from tasktable import handler`` stays light)."""
    if name == "TaskTable":
        from .app import TaskTable

        globals()["TaskTable"] = TaskTable
        return TaskTable
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
