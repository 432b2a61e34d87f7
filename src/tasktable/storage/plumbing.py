"""The plumbing under SQLStorage: engines and the three ways to open a connection.

Every SQL storage class builds on :class:`SQLBase`: ``_write`` (a transaction
on the main engine, or the caller's own), ``_write_hot`` (the worker's claims
and outcomes, on an engine without pre-ping) and ``_read``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
)
from sqlalchemy import exc as sa_exc

from .claim import Claimer, claimer_for
from .engine import build_engine, safe_url, wrap_db_errors


class SQLBase:
    """Tasks in a SQL database reached through one SQLAlchemy engine (two on servers)."""

    #: A worker's claims and outcomes go through an engine of their own with no
    #: pre-ping (a ``SELECT 1`` round trip on every checkout): a connection the
    #: server dropped fails that statement instead, SQLAlchemy then discards the
    #: pool's connections, and the claim loop and the completer retry as in any
    #: outage. Everything else keeps the pre-ping. None: ``engine`` serves both.
    hot_engine: Engine | None = None

    def __init__(self, url: str, *, pool_size: int = 5) -> None:
        self.url = url
        self.safe_url = safe_url(url)
        self.engine: Engine = build_engine(url, pool_size=pool_size)
        if self.engine.dialect.name != "sqlite":  # no pre-ping on SQLite anyway
            self.hot_engine = build_engine(url, pool_size=2, pre_ping=False)
        self.dialect_name = self.engine.dialect.name
        self.claimer: Claimer = claimer_for(self.dialect_name)
        self.capabilities = self.claimer.capabilities

    # -- plumbing ---------------------------------------------------------------
    @contextmanager
    def _write(self, connection: Connection | None = None) -> Iterator[Connection]:
        if connection is not None:  # the caller's transaction
            yield connection
            return
        with wrap_db_errors(self.url), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def _write_hot(self) -> Iterator[Connection]:
        """A write on the worker's hot path (claim, finish): see ``hot_engine``."""
        with wrap_db_errors(self.url), (self.hot_engine or self.engine).begin() as conn:
            yield conn

    @contextmanager
    def _one_statement(self) -> Iterator[Connection]:
        """A hot-path write that is one atomic statement. On PostgreSQL it runs in
        autocommit: the statement is its own transaction, in one round trip instead of
        three (``BEGIN``, the statement, ``COMMIT``). Elsewhere, as ``_write_hot``."""
        if self.dialect_name != "postgresql" or self.hot_engine is None:
            with self._write_hot() as conn:
                yield conn
            return
        with wrap_db_errors(self.url), self._autocommit().connect() as conn:
            yield conn

    def _autocommit(self) -> Engine:
        engine = self.__dict__.get("_autocommit_engine")
        if engine is None:
            assert self.hot_engine is not None
            engine = self.hot_engine.execution_options(isolation_level="AUTOCOMMIT")
            self.__dict__["_autocommit_engine"] = engine
        return engine

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with (
            wrap_db_errors(self.url),
            self.engine.connect().execution_options(tasktable_begin="DEFERRED") as conn,
        ):
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()
        if self.hot_engine is not None:
            self.hot_engine.dispose()

    def _driver_rows(self, sql: str, params: Any, engine: Engine | None = None) -> list[Any]:
        """Run one statement autocommitted on a pooled connection's driver connection,
        outside SQLAlchemy; driver errors become SQLAlchemy's (then DatabaseError), a
        disconnect invalidates the connection. The connection is pre-pinged (unless
        ``engine`` is the worker's ``hot_engine``), and
        goes back to the pool as it came (psycopg's autocommit switched back off)."""
        dialect = self.engine.dialect
        switch = dialect.name == "postgresql"  # SQLite's connections are autocommit
        with wrap_db_errors(self.url), (engine or self.engine).connect() as conn:
            raw: Any = conn.connection.driver_connection  # idle: no transaction open
            try:
                if switch:
                    raw.autocommit = True
                rows: list[Any] = raw.execute(sql, params).fetchall()
                return rows
            except dialect.loaded_dbapi.Error as exc:
                invalidated = dialect.is_disconnect(exc, raw, None)
                if invalidated:
                    conn.invalidate(exc)
                raise sa_exc.DBAPIError.instance(
                    sql,
                    params,
                    exc,
                    dialect.loaded_dbapi.Error,
                    hide_parameters=True,
                    connection_invalidated=invalidated,
                    dialect=dialect,
                ) from exc
            finally:
                if switch and not raw.closed:
                    try:
                        raw.autocommit = False  # as the pool lends it
                    except BaseException:
                        conn.invalidate()  # e.g. interrupted mid-statement
                        raise
