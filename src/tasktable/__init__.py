"""tasktable: durable background tasks for Python applications, kept in a database table."""

from .app import TaskTable
from .context import Retry, RunningTask
from .core.status import TaskStatus
from .core.task import ActionLink, Message, Progress, Task
from .errors import TaskTableError
from .handler import TaskHandler, handler
from .inline import InlineResult
from .notice import Notice
from .settings import Settings

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
