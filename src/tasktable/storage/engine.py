"""Engines from database URLs: drivers, pools and per-dialect connection settings.

- ``sqlite:///path`` (the default): the parent folder is created; every
  connection uses WAL, a 30 s busy timeout, and write transactions begin with
  ``BEGIN IMMEDIATE`` so that several processes on one file queue for the
  write lock instead of failing with "database is locked".
- ``postgresql://`` uses psycopg 3 (``pip install 'tasktable[postgres]'``).
- ``mysql://`` and ``mariadb://`` use PyMySQL (``pip install 'tasktable[mysql]'``)
  with READ COMMITTED, the isolation SKIP LOCKED claims are designed for.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url
from sqlalchemy import exc as sa_exc

from ..errors import DatabaseError, InvalidInput

if TYPE_CHECKING:
    import sqlite3

_DRIVERS = {
    "postgresql": ("postgresql+psycopg", "postgres"),
    "postgres": ("postgresql+psycopg", "postgres"),
    "mysql": ("mysql+pymysql", "mysql"),
    "mariadb": ("mariadb+pymysql", "mysql"),
}

SQLITE_BUSY_TIMEOUT_MS = 30_000


def parse_url(url: str | URL) -> URL:
    try:
        parsed = make_url(url)
    except (sa_exc.ArgumentError, ValueError) as exc:
        raise InvalidInput(
            f"Cannot parse database URL {_redact(str(url))!r}; write it like "
            "sqlite:///var/tasktable.sqlite3 or postgresql://user@host/dbname."
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed
    if backend not in _DRIVERS:
        raise InvalidInput(
            f"Unsupported database {backend!r}; tasktable runs on sqlite, postgresql and mysql/mariadb."
        )
    if "+" not in parsed.drivername:
        parsed = parsed.set(drivername=_DRIVERS[backend][0])
    return parsed


def _redact(text: str) -> str:
    """An unparsable URL as typed, with anything between ``//`` and ``@`` hidden."""
    return re.sub(r"//[^/]*@", "//***@", text)


def safe_url(url: str | URL) -> str:
    """The URL with its password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable URL>"


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _sqlite_connect_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        import sqlite3  # not at module import: a PostgreSQL or MariaDB worker never loads it

        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves, below
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        # Switching a new file to WAL needs an exclusive lock that the busy timeout
        # does not wait for: two processes opening a fresh file at once would see
        # "database is locked". Wait for it here, within the same timeout.
        deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                cur.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()
        # SQLite's lower() folds ASCII only; name filters and search ignore case beyond
        # it on PostgreSQL and MariaDB, so here too.
        dbapi_conn.create_function("lower", 1, _lower, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("tasktable_begin", "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")


#: A pooled connection that went back to the pool less than this many seconds ago is
#: lent again without a ping first. The ping (a round trip) is what stands between a
#: server restart and a failed statement; SQLAlchemy's ``pool_pre_ping`` sends it on
#: every checkout, a quarter of a single enqueue on PostgreSQL. A restart that lands
#: within this second of a connection's last use fails one statement (a clean
#: DatabaseError, the pool then discarded), as the worker's hot path already accepts.
PING_AFTER_IDLE = 1.0


def _ping_after_idle(engine: Engine) -> None:
    """Ping a connection on checkout only when it sat in the pool ``PING_AFTER_IDLE``
    seconds or more (SQLAlchemy's pessimistic disconnect handling, as an event)."""

    def fresh(_dbapi_conn: Any, record: Any, *_: Any) -> None:
        record.info["tasktable_idle_since"] = time.monotonic()

    def check(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("tasktable_idle_since")
        if since is not None and time.monotonic() - since < PING_AFTER_IDLE:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # the pool discards it and tries another (up to 3)
            raise sa_exc.DisconnectionError(f"ping failed: {exc}") from exc
        if alive is False:
            raise sa_exc.DisconnectionError("ping failed")

    event.listen(engine.pool, "connect", fresh)
    event.listen(engine.pool, "checkin", fresh)
    event.listen(engine.pool, "checkout", check)


def build_engine(url: str | URL, *, pool_size: int = 5, pre_ping: bool = True) -> Engine:
    parsed = parse_url(url)
    backend = parsed.get_backend_name()
    try:
        if backend == "sqlite":
            database = parsed.database
            if not database or database == ":memory:":
                raise InvalidInput(
                    "An in-memory SQLite database cannot be shared with workers; "
                    "use a file, e.g. sqlite:///var/tasktable.sqlite3."
                )
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(
                parsed,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
                pool_size=pool_size,
                max_overflow=10,
            )
            _sqlite_connect_hooks(engine)
            return engine
        options: dict[str, Any] = {
            "pool_size": pool_size,
            "max_overflow": 10,
            "pool_recycle": 3600,
        }
        if backend in ("mysql", "mariadb"):
            options["isolation_level"] = "READ COMMITTED"
            options["connect_args"] = {"connect_timeout": 10, "charset": "utf8mb4"}
        else:
            options["connect_args"] = {"connect_timeout": 10}
        engine = create_engine(parsed, **options)
        if pre_ping:
            _ping_after_idle(engine)
        return engine
    except sa_exc.NoSuchModuleError as exc:
        extra = _DRIVERS.get(backend, ("", backend))[1]
        raise DatabaseError(
            f"The driver for {backend} is not installed; run: pip install 'tasktable[{extra}]'."
        ) from exc
    except ModuleNotFoundError as exc:
        extra = _DRIVERS.get(backend, ("", backend))[1]
        raise DatabaseError(
            f"The driver for {backend} ({exc.name}) is not installed; "
            f"run: pip install 'tasktable[{extra}]'."
        ) from exc


def describe_db_error(exc: BaseException, url: str | URL) -> str:
    """One line naming what went wrong, never the password."""
    orig = getattr(exc, "orig", None) or exc
    reason = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    password = None
    with contextlib.suppress(Exception):
        password = make_url(url).password
    if password:
        reason = reason.replace(str(password), "***")
    return reason


@contextlib.contextmanager
def wrap_db_errors(url: str | URL, what: str = "use") -> Iterator[None]:
    """Turn driver errors into :class:`DatabaseError` with a sentence a person can act on."""
    try:
        yield
    except sa_exc.DBAPIError as exc:
        if exc.connection_invalidated or isinstance(exc, sa_exc.OperationalError):
            raise DatabaseError(
                f"Cannot {what} the database at {safe_url(url)}: {describe_db_error(exc, url)}."
            ) from exc
        raise DatabaseError(
            f"The database at {safe_url(url)} refused a statement: {describe_db_error(exc, url)}."
        ) from exc
