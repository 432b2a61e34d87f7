"""Storage backends. Only this package imports SQLAlchemy and the drivers."""

from .base import Outcome, Page, Sort, Stats, Storage, TaskFilter, WorkerInfo
from .sql import SQLStorage

__all__ = ["Outcome", "Page", "SQLStorage", "Sort", "Stats", "Storage", "TaskFilter", "WorkerInfo"]
