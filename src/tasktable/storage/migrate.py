"""Versioned migrations: numbered SQL files per dialect, applied in order.

``migrations/<dialect>/NNNN_name.sql`` holds plain SQL statements separated by
``;`` at the end of a line. Each applied file is recorded in ``tasktable_schema``.
Concurrent runs are serialized (an advisory lock on PostgreSQL, a named lock on
MariaDB, ``BEGIN IMMEDIATE`` on SQLite), so two workers starting on a fresh
database do not race.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from sqlalchemy import Connection, Dialect, Engine, inspect, select, text

from ..errors import DatabaseError, SchemaMissing
from .schema import schema_table
from .types import utcnow

_FILE = re.compile(r"^(\d{4})_(\w+)\.sql$")
_LOCK_KEY = 7_462_001  # arbitrary, fixed: the advisory lock id for migrations


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self) -> list[str]:
        body = "\n".join(
            line for line in self.sql.splitlines() if not line.strip().startswith("--")
        )
        return [s.strip() for s in re.split(r";\s*$", body, flags=re.M) if s.strip()]


def dialect_folder(engine: Engine) -> str:
    name = engine.dialect.name
    return "mysql" if name in ("mysql", "mariadb") else name


def load_migrations(folder: str) -> list[Migration]:
    root = resources.files("tasktable.storage") / "migrations" / folder
    found: list[Migration] = []
    for entry in root.iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text()))
    found.sort(key=lambda m: m.version)
    return found


#: The oldest MariaDB tasktable runs on: ``SKIP LOCKED`` (claims) came in 10.6.
MARIADB_MIN = (10, 6)


def unsupported_server(dialect: Dialect) -> str | None:
    """Why this connected server cannot hold a task table, or None when it can.

    MySQL (as opposed to MariaDB) is refused: tasktable's inserts and writes use
    ``INSERT/UPDATE ... RETURNING`` (MariaDB 10.5+), which MySQL has not, and only
    MariaDB is tested. Checked by ``migrate`` and by the schema check every table,
    worker and server makes first, so the error comes before anything is written.
    """
    if dialect.name not in ("mysql", "mariadb"):
        return None
    version = tuple(dialect.server_version_info or ())
    shown = ".".join(str(v) for v in version) or "unknown"
    if not getattr(dialect, "is_mariadb", False):
        return (
            f"MySQL {shown} is not supported: tasktable needs MariaDB "
            f"{MARIADB_MIN[0]}.{MARIADB_MIN[1]} or newer (it uses INSERT ... RETURNING, "
            "which MySQL lacks)."
        )
    if version < MARIADB_MIN:
        return (
            f"MariaDB {shown} is too old: tasktable needs {MARIADB_MIN[0]}.{MARIADB_MIN[1]} "
            "or newer (its claims use SELECT ... FOR UPDATE SKIP LOCKED)."
        )
    return None


def _require_supported(conn: Connection) -> None:
    reason = unsupported_server(conn.dialect)
    if reason is not None:
        raise DatabaseError(reason)


def current_version(conn: Connection) -> int | None:
    """The newest applied version, or None when there is no tasktable schema."""
    if not inspect(conn).has_table(schema_table.name):
        return None
    value = conn.execute(
        select(schema_table.c.version).order_by(schema_table.c.version.desc()).limit(1)
    ).scalar()
    return int(value) if value is not None else 0


def _lock(conn: Connection) -> None:
    name = conn.dialect.name
    if name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    elif name in ("mysql", "mariadb"):
        got = conn.execute(text("SELECT GET_LOCK('tasktable_migrate', 60)")).scalar()
        if got != 1:
            raise DatabaseError("Another tasktable migrate held its lock for 60 s; try again.")


def _unlock(conn: Connection) -> None:
    if conn.dialect.name in ("mysql", "mariadb"):
        conn.execute(text("SELECT RELEASE_LOCK('tasktable_migrate')"))


def migrate(engine: Engine) -> list[int]:
    """Apply every missing migration; return the versions applied (empty if none)."""
    applied: list[int] = []
    migrations = load_migrations(dialect_folder(engine))
    with engine.connect() as conn:
        _require_supported(conn)
        try:
            with conn.begin():
                _lock(conn)
                schema_table.create(conn, checkfirst=True)
                done = set(conn.execute(select(schema_table.c.version)).scalars())
                for migration in migrations:
                    if migration.version in done:
                        continue
                    for statement in migration.statements():
                        conn.exec_driver_sql(statement)
                    conn.execute(
                        schema_table.insert().values(
                            version=migration.version, name=migration.name, applied_at=utcnow()
                        )
                    )
                    applied.append(migration.version)
        finally:
            # After the commit: the next migrator must see every version recorded here.
            _unlock(conn)
    return applied


def check_schema(engine: Engine, url_text: str) -> None:
    """Raise :class:`SchemaMissing` unless every migration file of this code is applied."""
    known = {m.version for m in load_migrations(dialect_folder(engine))}
    with engine.connect() as conn:
        _require_supported(conn)
        if current_version(conn) is None:
            applied: set[int] | None = None
        else:
            applied = {int(v) for v in conn.execute(select(schema_table.c.version)).scalars()}
    if applied is None or not known <= applied:
        state = (
            "has no tasktable schema"
            if not applied
            else f"lacks migration(s) {', '.join(map(str, sorted(known - applied)))}"
        )
        raise SchemaMissing(
            f"The database at {url_text} {state}; run: tasktable migrate --db '{url_text}'."
        )
    newer = applied - known
    if newer:
        raise SchemaMissing(
            f"The database at {url_text} has migration(s) {', '.join(map(str, sorted(newer)))} "
            "that this tasktable does not know; upgrade tasktable."
        )
