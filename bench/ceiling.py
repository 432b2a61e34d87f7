"""The ceiling: what the database allows with no queue library at all.

A bare table (``id``, ``status``) preloaded with pending rows; 5 client
threads, each on its own connection, loop "claim up to B rows in one
statement, then mark them done in one statement", each in its own
transaction, for a fixed time (or until the rows run out: the rate is
counted over the time actually taken). The driver is used directly (psycopg,
sqlite3, PyMySQL), so nothing but the database and the wire is measured.

- PostgreSQL: ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED
  LIMIT B) RETURNING id``, then ``UPDATE ... WHERE id = ANY(...)``.
- SQLite (WAL, synchronous=NORMAL as tasktable sets it): the same
  ``UPDATE ... RETURNING`` under ``BEGIN IMMEDIATE``.
- MariaDB (READ COMMITTED): ``SELECT ... FOR UPDATE SKIP LOCKED`` then
  ``UPDATE`` in one transaction, then the done ``UPDATE``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any

from sqlalchemy import make_url

from .config import Sizes
from .databases import Database

THREADS = 5


class _Client:
    """One connection and its claim/done statements for one dialect."""

    def __init__(self, db: Database) -> None:
        self.backend = db.backend
        self.conn: Any = _connect(db)

    def claim(self, batch: int) -> list[int]:
        if self.backend == "postgresql":
            with self.conn.cursor() as cur:
                cur.execute(
                    "UPDATE bench_ceiling SET status = 'running' WHERE id IN ("
                    " SELECT id FROM bench_ceiling WHERE status = 'pending'"
                    " ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id",
                    (batch,),
                )
                return [r[0] for r in cur.fetchall()]
        if self.backend == "sqlite":
            cur = self.conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            cur.execute(
                "UPDATE bench_ceiling SET status = 'running' WHERE id IN ("
                " SELECT id FROM bench_ceiling WHERE status = 'pending' ORDER BY id LIMIT ?)"
                " RETURNING id",
                (batch,),
            )
            ids = [r[0] for r in cur.fetchall()]
            cur.execute("COMMIT")
            return ids
        with self.conn.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute(
                "SELECT id FROM bench_ceiling WHERE status = 'pending'"
                " ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
                (batch,),
            )
            ids = [r[0] for r in cur.fetchall()]
            if ids:
                cur.execute("UPDATE bench_ceiling SET status = 'running' WHERE id IN %s", (ids,))
            cur.execute("COMMIT")
            return ids

    def done(self, ids: list[int]) -> None:
        if self.backend == "postgresql":
            with self.conn.cursor() as cur:
                cur.execute("UPDATE bench_ceiling SET status = 'done' WHERE id = ANY(%s)", (ids,))
        elif self.backend == "sqlite":
            marks = ",".join("?" * len(ids))
            cur = self.conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            cur.execute(f"UPDATE bench_ceiling SET status = 'done' WHERE id IN ({marks})", ids)
            cur.execute("COMMIT")
        else:
            with self.conn.cursor() as cur:
                cur.execute("UPDATE bench_ceiling SET status = 'done' WHERE id IN %s", (ids,))

    def close(self) -> None:
        self.conn.close()


def _connect(db: Database) -> Any:
    if db.backend == "sqlite":
        conn = sqlite3.connect(db.name, timeout=30, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn
    url = make_url(db.url)
    if db.backend == "postgresql":
        import psycopg

        return psycopg.connect(db.libpq, autocommit=True)
    import pymysql

    conn = pymysql.connect(
        host=url.host,
        port=url.port or 3306,
        user=url.username,
        password=url.password or "",
        database=url.database,
        autocommit=True,
    )
    with conn.cursor() as cur:
        cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
    return conn


def _setup(db: Database, rows: int) -> None:
    client = _Client(db)
    conn = client.conn
    if db.backend == "postgresql":
        statements = [
            "CREATE TABLE bench_ceiling (id BIGSERIAL PRIMARY KEY, status VARCHAR(16) NOT NULL)",
            "CREATE INDEX ix_bench_ceiling ON bench_ceiling (status, id)",
            f"INSERT INTO bench_ceiling (status) SELECT 'pending' FROM generate_series(1, {rows})",
            "ANALYZE bench_ceiling",
        ]
    elif db.backend == "sqlite":
        statements = [
            "CREATE TABLE bench_ceiling (id INTEGER PRIMARY KEY, status VARCHAR(16) NOT NULL)",
            "CREATE INDEX ix_bench_ceiling ON bench_ceiling (status, id)",
            "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < "
            f"{rows}) INSERT INTO bench_ceiling (status) SELECT 'pending' FROM n",
            "ANALYZE bench_ceiling",
        ]
    else:
        statements = [
            "CREATE TABLE bench_ceiling (id BIGINT AUTO_INCREMENT PRIMARY KEY,"
            " status VARCHAR(16) NOT NULL, KEY ix_bench_ceiling (status, id)) ENGINE=InnoDB",
            f"INSERT INTO bench_ceiling (status) SELECT 'pending' FROM seq_1_to_{rows}",
            "ANALYZE TABLE bench_ceiling",
        ]
    cur = conn.cursor()
    for statement in statements:
        cur.execute(statement)
        if db.backend == "mariadb":
            cur.fetchall()
    cur.close()
    client.close()


def ceiling(db: Database, sizes: Sizes, *, batch: int) -> dict[str, Any]:
    """Rows claimed and marked done per second by 5 threads at claim size ``batch``."""
    _setup(db, sizes.ceiling_rows)
    clients = [_Client(db) for _ in range(THREADS)]
    counts = [0] * THREADS
    errors: list[str] = []
    gate = threading.Barrier(THREADS + 1)
    deadline = 0.0

    def loop(index: int) -> None:
        client = clients[index]
        gate.wait()
        try:
            while time.monotonic() < deadline:
                ids = client.claim(batch)
                if not ids:
                    return
                client.done(ids)
                counts[index] += len(ids)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + sizes.ceiling_seconds
    started = time.perf_counter()
    gate.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for client in clients:
        client.close()
    if errors:
        raise RuntimeError(errors[0])
    total = sum(counts)
    return {
        "value": total / elapsed,
        "rows": total,
        "seconds": elapsed,
        "batch": batch,
        "threads": THREADS,
        "ran_dry": total >= sizes.ceiling_rows,  # then timed until the last row was done
    }
