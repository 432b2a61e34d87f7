"""Column types and SQL expressions that differ per dialect.

Times are stored in UTC: ``timestamptz`` on PostgreSQL, ``DATETIME(6)`` on
MariaDB/MySQL, ISO text with microseconds on SQLite. Every "now" in a
statement is the database's clock (:class:`utcnow`), so leases and
retention never depend on a worker's clock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, LargeBinary, Text
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.types import TypeDecorator

# No dialect package is imported here (nor by the schema): importing one imports
# every driver's dialect module with it (PostgreSQL's and MySQL's were 60 ms of each
# command's start). A dialect's own types are looked up once it is in use.


class _WiderOnMySQL(TypeDecorator[Any]):
    """``impl`` everywhere, and on MariaDB/MySQL its dialect type named ``mysql_type``."""

    cache_ok = True
    mysql_type = ""

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name in ("mysql", "mariadb"):
            from sqlalchemy.dialects import mysql

            return dialect.type_descriptor(getattr(mysql, self.mysql_type)())
        return self.impl_instance


class LongText(_WiderOnMySQL):
    """Up to 16 MiB of text on MariaDB (``MEDIUMTEXT``: TEXT there stops at 64 KiB)."""

    impl = Text
    mysql_type = "MEDIUMTEXT"
    cache_ok = True  # SQLAlchemy reads it from each class itself


class LongBlob(_WiderOnMySQL):
    """Up to 4 GiB of bytes on MariaDB (``LONGBLOB``: BLOB there stops at 64 KiB)."""

    impl = LargeBinary
    mysql_type = "LONGBLOB"
    cache_ok = True


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime in Python, whatever the column type underneath."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(DateTime(timezone=True))
        if dialect.name in ("mysql", "mariadb"):
            from sqlalchemy.dialects import mysql

            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite text written by SQL functions
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


class utcnow(FunctionElement[datetime]):
    """The database's current UTC time, optionally shifted by ``offset`` seconds."""

    type = UTCDateTime()
    inherit_cache = False

    def __init__(self, offset: float = 0.0) -> None:
        super().__init__()
        self.offset = float(offset)


@compiles(utcnow, "postgresql")
def _pg_now(element: utcnow, compiler: SQLCompiler, **kw: Any) -> str:
    if element.offset:
        return f"(statement_timestamp() + interval '{element.offset:.6f} seconds')"
    return "statement_timestamp()"


@compiles(utcnow, "mysql")
@compiles(utcnow, "mariadb")
def _my_now(element: utcnow, compiler: SQLCompiler, **kw: Any) -> str:
    if element.offset:
        return f"(UTC_TIMESTAMP(6) + INTERVAL {round(element.offset * 1_000_000)} MICROSECOND)"
    return "UTC_TIMESTAMP(6)"


@compiles(utcnow)
def _sqlite_now(element: utcnow, compiler: SQLCompiler, **kw: Any) -> str:
    # '%f' is seconds with 3 decimals; '000' pads to the 6 digits SQLAlchemy writes.
    if element.offset:
        return f"strftime('%Y-%m-%d %H:%M:%f000', 'now', '{element.offset:+.3f} seconds')"
    return "strftime('%Y-%m-%d %H:%M:%f000', 'now')"
