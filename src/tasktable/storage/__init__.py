"""Storage backends. Only this package imports SQLAlchemy and the drivers."""

from typing import TYPE_CHECKING, Any

from .base import Outcome, Page, Sort, Stats, Storage, TaskFilter, WorkerInfo

if TYPE_CHECKING:
    from .sql import SQLStorage

__all__ = ["Outcome", "Page", "SQLStorage", "Sort", "Stats", "Storage", "TaskFilter", "WorkerInfo"]


def __getattr__(name: str) -> Any:
    """``SQLStorage`` (and SQLAlchemy with it) on first use: ``storage.base`` alone is
    what a slot process imports."""
    if name == "SQLStorage":
        from .sql import SQLStorage

        globals()["SQLStorage"] = SQLStorage
        return SQLStorage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
