"""A fresh database per run: a temporary SQLite file, or ``tt_bench_<random>`` on a server.

Server databases are created and dropped like ``tests/conftest.py`` does; the
admin URLs come from ``BENCH_PG_URL`` / ``BENCH_MYSQL_URL`` (defaults: the
local servers the tests use).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, make_url, text

PG_ADMIN_URL = os.environ.get(
    "BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
MYSQL_ADMIN_URL = os.environ.get("BENCH_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
BACKENDS = ("sqlite", "postgresql", "mariadb")


@dataclass(frozen=True)
class Database:
    backend: str
    url: str  # SQLAlchemy URL, as tasktable takes it
    name: str  # database name, or the SQLite file path

    @property
    def libpq(self) -> str:
        """A plain ``postgresql://`` URL for libraries that take a libpq conninfo."""
        return make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)


def reachable(backend: str) -> str | None:
    """None when the server answers, else the reason it does not."""
    if backend == "sqlite":
        return None
    url = PG_ADMIN_URL if backend == "postgresql" else MYSQL_ADMIN_URL
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return f"{backend} is not reachable: {str(exc).splitlines()[0]}"
    return None


@contextlib.contextmanager
def fresh(backend: str) -> Iterator[Database]:
    if backend == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="tt_bench_"))
        path = folder / "bench.sqlite3"
        try:
            yield Database(backend, f"sqlite:///{path}", str(path))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    name = f"tt_bench_{secrets.token_hex(6)}"
    admin_url = PG_ADMIN_URL if backend == "postgresql" else MYSQL_ADMIN_URL
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    create, drop = (
        (f'CREATE DATABASE "{name}"', f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if backend == "postgresql"
        else (
            f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4",
            f"DROP DATABASE IF EXISTS `{name}`",
        )
    )
    with admin.connect() as conn:
        conn.execute(text(create))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield Database(backend, url, name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(drop))
        admin.dispose()


def analyze(url: str, tables: tuple[str, ...] = ("tasktable_task",)) -> None:
    """Fresh statistics after a load: a planner without them can pick a slow claim plan."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            backend = engine.dialect.name
            verb = "ANALYZE TABLE" if backend in ("mysql", "mariadb") else "ANALYZE"
            for table in tables:
                conn.execute(text(f"{verb} {table}"))
    finally:
        engine.dispose()
