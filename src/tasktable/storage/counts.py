"""Capped counts per status: fast on tables of any size.

``SELECT count(*) FROM (SELECT 1 ... WHERE status = ? AND <filter> LIMIT cap + 1)``
reads at most ``cap + 1`` entries of the ``(status, ...)`` index per status, so
the dashboard's counts cost the same on a million rows as on a thousand; a
count above the cap is reported as ``cap + 1`` and shown as "10,000+".
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import func, literal, select

from ..core.status import TaskStatus
from .base import TaskFilter
from .rows import filter_clause
from .schema import task_table
from .sql import SQLStorage

T = task_table.c


def capped_counts(storage: SQLStorage, flt: TaskFilter, cap: int) -> dict[str, int]:
    """Tasks per status matching ``flt`` (its own statuses ignored), each at most ``cap + 1``."""
    counts: dict[str, int] = {}
    with storage._read() as conn:  # same package: the storage's read connection
        for status in TaskStatus:
            where = filter_clause(replace(flt, statuses=(status,)))
            inner = select(literal(1).label("one")).where(where).limit(cap + 1).subquery()
            stmt = select(func.count()).select_from(inner)
            counts[status.value] = int(conn.execute(stmt).scalar() or 0)
    return counts
