"""The handler interface, the ``@handler`` decorator, and resolving a path to a handler.

A handler is a class that implements :class:`TaskHandler` (constructible with
no arguments) or a function decorated with :func:`handler`. The table stores
its import path, ``package.module:Name``.
"""

from __future__ import annotations

import abc
import importlib
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, overload

from .core.handlers import Allowlist, normalize_handler_path, split_handler_path
from .errors import HandlerError

if TYPE_CHECKING:
    from .context import RunningTask


class TaskHandler(abc.ABC):
    """Implement :meth:`run_task` (sync or ``async def``) to make a handler.

    Optional class attributes: ``task_name`` (the default task name),
    ``max_attempts`` (runs in all for a task that raises; default 1, the
    seed's behaviour), ``timeout`` (seconds) and ``rerun_on_loss`` (default
    True: a task whose worker was lost runs again; False for work that must
    not repeat, which then ends ``error`` instead).
    """

    task_name: ClassVar[str | None] = None
    max_attempts: ClassVar[int | None] = None
    timeout: ClassVar[float | None] = None
    rerun_on_loss: ClassVar[bool] = True

    @abc.abstractmethod
    def run_task(self, task: RunningTask) -> Any:
        """Do the work. Return normally for ``success``; raise, or call
        ``task.fail(message)``, for ``error``."""

    @classmethod
    def get_task_name(cls) -> str:
        return cls.task_name or cls.__name__


class FunctionHandler(TaskHandler):
    """A plain function made a handler by :func:`handler`. Still callable as before."""

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        name: str | None,
        max_attempts: int | None,
        timeout: float | None,
        rerun_on_loss: bool = True,
    ) -> None:
        self.func = func
        self.__name__ = func.__name__
        self.__qualname__ = func.__qualname__
        self.__module__ = func.__module__
        self.__doc__ = func.__doc__
        self.name = name or func.__name__
        self.attempts = max_attempts
        self.seconds = timeout
        self.rerun = rerun_on_loss

    def run_task(self, task: RunningTask) -> Any:
        return self.func(task)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)

    @property
    def path(self) -> str:
        return f"{self.func.__module__}:{self.func.__qualname__}"


@overload
def handler(func: Callable[..., Any], /) -> FunctionHandler: ...
@overload
def handler(
    *,
    name: str | None = None,
    max_attempts: int | None = None,
    timeout: float | None = None,
    rerun_on_loss: bool = True,
) -> Callable[[Callable[..., Any]], FunctionHandler]: ...
def handler(
    func: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    max_attempts: int | None = None,
    timeout: float | None = None,
    rerun_on_loss: bool = True,
) -> Any:
    """Make ``func(task)`` a handler: ``@handler`` or ``@handler(name="Export orders")``."""

    def wrap(f: Callable[..., Any]) -> FunctionHandler:
        return FunctionHandler(
            f,
            name=name,
            max_attempts=max_attempts,
            timeout=timeout,
            rerun_on_loss=rerun_on_loss,
        )

    return wrap(func) if func is not None else wrap


def handler_path(obj: Any) -> str:
    """The import path of a handler object, class, or path string."""
    if isinstance(obj, str):
        return normalize_handler_path(obj)
    if isinstance(obj, FunctionHandler):
        return obj.path
    if inspect.isclass(obj):
        return f"{obj.__module__}:{obj.__qualname__}"
    raise HandlerError(
        f"{obj!r} is not a handler; pass a TaskHandler class, an @handler function or its path."
    )


def load_handler(path: str, allowlist: Allowlist) -> TaskHandler:
    """Import the handler at ``path`` and return an instance ready to run.

    The allowlist is checked on the path's text before anything is imported.
    Raises :class:`HandlerError` naming exactly what is wrong.
    """
    path = allowlist.check(path)
    module_name, attr = split_handler_path(path)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise HandlerError(
            f"Handler {path!r} cannot be imported: {type(exc).__name__}: {exc}"
        ) from exc
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise HandlerError(
                f"Handler {path!r} cannot be imported: module {module_name!r} has no {attr!r}."
            ) from None
    return as_handler(obj, path)


def as_handler(obj: Any, path: str) -> TaskHandler:
    if isinstance(obj, TaskHandler):
        return obj
    if inspect.isclass(obj) and issubclass(obj, TaskHandler):
        if inspect.isabstract(obj):
            raise HandlerError(f"Handler {path!r} is abstract: it does not define run_task.")
        try:
            return obj()
        except Exception as exc:
            raise HandlerError(
                f"Handler {path!r} could not be created (it must take no arguments): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
    raise HandlerError(
        f"{path!r} is not a handler: it must be a class implementing tasktable.TaskHandler "
        "or a function decorated with @tasktable.handler."
    )


def handler_defaults(obj: TaskHandler) -> tuple[str | None, int | None, float | None]:
    """(task name, max_attempts, timeout) a handler declares."""
    if isinstance(obj, FunctionHandler):
        return obj.name, obj.attempts, obj.seconds
    cls = type(obj)
    return cls.get_task_name(), cls.max_attempts, cls.timeout


def handler_rerun_on_loss(obj: TaskHandler) -> bool:
    """Whether the handler allows a run again after its worker was lost (default True)."""
    if isinstance(obj, FunctionHandler):
        return obj.rerun
    return bool(type(obj).rerun_on_loss)
