"""Throughput over time buckets: finished tasks counted per bucket, in SQL.

One bounded query: it reads only the rows finished inside the window (the
``(status, finished_at)`` index) and returns at most ``buckets x 2`` groups,
whatever the size of the table. Seconds since the epoch are computed per
dialect without any session time zone (times are stored in UTC).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, func, literal_column, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import FunctionElement

from ..core.status import TaskStatus
from .schema import task_table
from .sql import SQLStorage
from .types import utcnow

T = task_table.c


class epoch_seconds(FunctionElement[int]):
    """Whole seconds since 1970-01-01 UTC of a UTC time column or expression."""

    type = BigInteger()
    inherit_cache = True


@compiles(epoch_seconds, "postgresql")
def _pg_epoch(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    arg = compiler.process(element.clauses, **kw)
    return f"CAST(FLOOR(EXTRACT(EPOCH FROM {arg})) AS BIGINT)"


@compiles(epoch_seconds, "mysql")
@compiles(epoch_seconds, "mariadb")
def _my_epoch(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    # Arithmetic on the stored DATETIME: no session time zone involved (unlike UNIX_TIMESTAMP).
    arg = compiler.process(element.clauses, **kw)
    return f"TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', {arg})"


@compiles(epoch_seconds)
def _sqlite_epoch(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    arg = compiler.process(element.clauses, **kw)
    return f"CAST(strftime('%s', {arg}) AS INTEGER)"


@dataclass(frozen=True, kw_only=True)
class Bucket:
    start: datetime
    success: int
    error: int


@dataclass(frozen=True, kw_only=True)
class Throughput:
    now: datetime  # the database clock when counted
    bucket_seconds: int
    buckets: list[Bucket]


def throughput(storage: SQLStorage, bucket_seconds: int, buckets: int) -> Throughput:
    """Finished tasks per bucket for the last ``buckets`` buckets, oldest first, the
    current (partial) bucket last; buckets without tasks are listed with zeros."""
    size = int(bucket_seconds)
    with storage._read() as conn:  # same package: the storage's read connection
        now_epoch = int(conn.execute(select(epoch_seconds(utcnow()))).scalar_one())
        first = (now_epoch // size - buckets + 1) * size
        since = datetime.fromtimestamp(first, UTC)
        epoch = epoch_seconds(T.finished_at)
        width = literal_column(str(size), BigInteger())  # an int we made: inlined, so
        bucket = (epoch - epoch % width).label("bucket")  # GROUP BY equals the SELECT
        finished = [TaskStatus.SUCCESS.value, TaskStatus.ERROR.value]
        rows = conn.execute(
            select(bucket, T.status, func.count())
            .where(T.status.in_(finished), T.finished_at >= since)
            .group_by(bucket, T.status)
        ).all()
    counts: dict[tuple[int, str], int] = {}
    for start, status, count in rows:
        counts[(int(start), str(status))] = int(count)
    series = [
        Bucket(
            start=since + timedelta(seconds=i * size),
            success=counts.get((first + i * size, TaskStatus.SUCCESS.value), 0),
            error=counts.get((first + i * size, TaskStatus.ERROR.value), 0),
        )
        for i in range(buckets)
    ]
    return Throughput(
        now=datetime.fromtimestamp(now_epoch, UTC), bucket_seconds=size, buckets=series
    )
