"""tasktable on the Django project's own database connection.

A :class:`DjangoDatabaseTable` is a :class:`~tasktable.TaskTable` whose every
statement runs on ``django.db.connections[alias]``, the connection the request
already uses. So a task enqueued inside ``transaction.atomic()`` is part of that
transaction: rolled back with it, and visible to workers only once it commits.
Outside an atomic block each operation is its own transaction (Django's
autocommit). It also works on the in-memory SQLite database of Django's test
runner, which no second connection could reach.

How: SQLAlchemy is handed Django's DB-API connection through a thin wrapper
whose ``commit``, ``rollback`` and ``close`` do nothing, so transactions and the
connection's life stay Django's; each write is wrapped in
``transaction.atomic(using=alias)`` (a savepoint inside the caller's block).

Workers do not use this: they run in their own process with their own pool, on
the URL :func:`django_database_url` derives from ``DATABASES``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]
from django.db import connections, transaction  # type: ignore[import-untyped]
from sqlalchemy import URL, Connection, Engine, create_engine
from sqlalchemy.dialects.sqlite import DATETIME
from sqlalchemy.pool import NullPool
from sqlalchemy.types import DateTime

from ...app import TaskTable
from ...errors import SchemaMissing
from ...settings import Settings
from ...storage.claim import claimer_for
from ...storage.engine import safe_url, wrap_db_errors
from ...storage.sql import SQLStorage

#: libpq parameters a Django PostgreSQL OPTIONS may carry that a worker's URL needs too.
_PG_OPTIONS = (
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslcrl",
    "connect_timeout",
    "application_name",
    "options",
    "service",
    "passfile",
    "target_session_attrs",
)

#: Django MySQL OPTIONS (connect() arguments of mysqlclient or PyMySQL) a worker's URL needs
#: too; ``ssl`` (a dict) becomes the ``ssl_*`` query keys SQLAlchemy turns back into one.
_MYSQL_OPTIONS = (
    "charset",
    "unix_socket",
    "read_default_file",
    "read_default_group",
    "init_command",
)
_MYSQL_SSL = ("ca", "cert", "key", "capath", "cipher", "check_hostname")

#: The isolation level tasktable's statements are written for on MariaDB/MySQL. Django's
#: MySQL backend sets it on its connections unless OPTIONS['isolation_level'] says otherwise.
READ_COMMITTED = "read committed"

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


class _BorrowedConnection:
    """Django's DB-API connection, lent to SQLAlchemy for a few statements.

    Transactions and the connection's life stay Django's, so ``commit``,
    ``rollback`` and ``close`` do nothing here. SQLAlchemy's per-connection setup
    (a REGEXP function on SQLite, a notice handler on psycopg) is skipped too:
    Django's connection keeps its own REGEXP, and handlers would pile up on it.
    """

    def __init__(self, raw: Any) -> None:
        self._raw = raw

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        return self._raw.cursor(*args, **kwargs)

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        pass

    def create_function(self, *args: Any, **kwargs: Any) -> None:
        pass

    def add_notice_handler(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


class _DjangoSQLiteDateTime(DATETIME):
    """SQLite DATETIME that also takes the ``datetime`` objects Django's connection
    returns (it parses declared types, ``PARSE_DECLTYPES``); SQLAlchemy expects text."""

    def result_processor(self, dialect: Any, coltype: object) -> Any:
        parse = super().result_processor(dialect, coltype)

        def process(value: Any) -> Any:
            if value is None or isinstance(value, datetime) or parse is None:
                return value
            return parse(value)

        return process


def _vendor(alias: str) -> str:
    if alias not in connections.settings:
        raise ImproperlyConfigured(
            f"tasktable: there is no database {alias!r} in DATABASES "
            "(the backend's OPTIONS['DATABASE'])."
        )
    vendor: str = connections[alias].vendor
    if vendor not in ("sqlite", "postgresql", "mysql"):
        raise ImproperlyConfigured(
            f"tasktable runs on SQLite, PostgreSQL and MariaDB/MySQL; database {alias!r} is "
            f"{vendor}. Give the backend a separate tasktable database in OPTIONS['URL']."
        )
    return vendor


def _bridge_url(alias: str, vendor: str) -> str:
    if vendor == "sqlite":
        return "sqlite+pysqlite://"
    if vendor == "postgresql":
        driver = connections[alias].Database.__name__  # psycopg (3) or psycopg2
        return f"postgresql+{driver}://"
    # Django's MySQL backend imports MySQLdb: mysqlclient, or PyMySQL standing in for it
    # (pymysql.install_as_MySQLdb()). SQLAlchemy's dialect must be the driver's own.
    driver = connections[alias].Database.__name__
    return "mysql+pymysql://" if driver == "pymysql" else "mysql+mysqldb://"


def mysql_isolation(alias: str) -> str | None:
    """The isolation level Django sets on the MySQL connections of ``alias`` (lower case),
    or None when OPTIONS['isolation_level'] leaves it to the server's default."""
    options = connections[alias].settings_dict.get("OPTIONS") or {}
    level = options.get("isolation_level", READ_COMMITTED)
    return str(level).lower() if level else None


def bridge_engine(alias: str) -> Engine:
    """An engine whose connections are Django's connection ``alias`` of the calling thread."""
    with _engines_lock:
        engine = _engines.get(alias)
        if engine is not None:
            return engine
        vendor = _vendor(alias)

        def borrow() -> _BorrowedConnection:
            conn = connections[alias]
            conn.ensure_connection()
            conn.validate_no_broken_transaction()
            return _BorrowedConnection(conn.connection)

        options: dict[str, Any] = {
            "creator": borrow,
            "poolclass": NullPool,
            "pool_reset_on_return": None,
        }
        if vendor == "postgresql":
            options["use_native_hstore"] = False  # no type lookups on the borrowed connection
        engine = create_engine(_bridge_url(alias, vendor), **options)
        if vendor == "sqlite":
            colspecs = dict(engine.dialect.colspecs)
            colspecs[DateTime] = _DjangoSQLiteDateTime
            engine.dialect.colspecs = colspecs  # this engine only, on purpose
        _engines[alias] = engine
        return engine


def django_database_url(alias: str) -> str:
    """The tasktable URL of Django's database ``alias``, for workers and the CLI."""
    vendor = _vendor(alias)
    conf = connections[alias].settings_dict
    if vendor == "sqlite":
        name = str(conf.get("NAME") or "")
        if not name or name == ":memory:" or "mode=memory" in name:
            return "sqlite://"  # in-memory: no worker can share it (tasktable says so)
        return URL.create("sqlite", database=str(Path(name).resolve())).render_as_string()
    if vendor == "postgresql":
        opts = conf.get("OPTIONS") or {}
        query = {k: str(opts[k]) for k in _PG_OPTIONS if opts.get(k) is not None}
        return _server_url("postgresql+psycopg", conf, conf.get("HOST") or None, query)
    return mysql_url(conf)


def mysql_url(conf: dict[str, Any]) -> str:
    """The tasktable URL of a Django MySQL/MariaDB database (its ``settings_dict``).

    Like Django's MySQL backend: a HOST starting with ``/`` is a Unix socket, and the
    connection options of OPTIONS go to the driver (PyMySQL, for workers)."""
    opts = conf.get("OPTIONS") or {}
    query = {k: str(opts[k]) for k in _MYSQL_OPTIONS if opts.get(k)}
    ssl = opts.get("ssl") or {}
    query.update({f"ssl_{k}": str(ssl[k]) for k in _MYSQL_SSL if ssl.get(k) is not None})
    host = str(conf.get("HOST") or "")
    if host.startswith("/"):
        query["unix_socket"] = host
        host = ""
    return _server_url("mysql+pymysql", conf, host or None, query)


def _server_url(driver: str, conf: dict[str, Any], host: str | None, query: dict[str, str]) -> str:
    port = conf.get("PORT")
    return URL.create(
        driver,
        username=conf.get("USER") or None,
        password=conf.get("PASSWORD") or None,
        host=host,
        port=int(port) if port else None,
        database=conf.get("NAME") or None,
        query=query,
    ).render_as_string(hide_password=False)


class DjangoDatabaseStorage(SQLStorage):
    """SQLStorage on Django's connection ``alias`` (see the module docstring)."""

    def __init__(self, alias: str, url: str) -> None:
        # Not SQLStorage.__init__: that builds an engine and a pool of its own.
        self.alias = alias
        self.url = url
        self.safe_url = safe_url(url)
        self.engine = bridge_engine(alias)
        self.dialect_name = self.engine.dialect.name
        self.claimer = claimer_for(self.dialect_name)
        self.capabilities = self.claimer.capabilities

    @contextmanager
    def _write(self, connection: Connection | None = None) -> Iterator[Connection]:
        if connection is not None:
            yield connection
            return
        with (
            transaction.atomic(using=self.alias),
            wrap_db_errors(self.url),
            self.engine.connect() as conn,
        ):
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with wrap_db_errors(self.url), self.engine.connect() as conn:
            yield conn

    def migrate(self) -> list[int]:
        with transaction.atomic(using=self.alias):
            return super().migrate()

    def dispose(self) -> None:
        pass  # the engine is shared and holds nothing: its connections are Django's


class DjangoDatabaseTable(TaskTable):
    """A TaskTable on Django's own database connection ``alias``: joins its transactions."""

    def __init__(self, alias: str = "default", *, settings: Settings | None = None) -> None:
        super().__init__(django_database_url(alias), settings=settings, auto_migrate=False)
        self.alias = alias
        self._checked: DjangoDatabaseStorage | None = None
        self._check_lock = threading.Lock()

    @property
    def storage(self) -> SQLStorage:
        """The storage, schema-checked on first use."""
        if self._checked is None:
            with self._check_lock:
                if self._checked is None:
                    storage = DjangoDatabaseStorage(self.alias, self.url)
                    try:
                        storage.check_schema()
                    except SchemaMissing as exc:
                        raise SchemaMissing(
                            f"{exc} In a Django project: add 'tasktable.contrib.django' to "
                            "INSTALLED_APPS and run: python manage.py migrate."
                        ) from exc
                    self._checked = storage
        return self._checked

    def migrate(self) -> list[int]:
        """Create or upgrade tasktable's tables in Django's database (idempotent)."""
        applied = DjangoDatabaseStorage(self.alias, self.url).migrate()
        self._checked = None
        return applied

    def close(self) -> None:
        self._checked = None
