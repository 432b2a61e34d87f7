"""Wake-ups: tell an idle worker at once that a task was enqueued, instead of a poll.

- PostgreSQL (``Capabilities.listen_notify``): an enqueue runs
  ``pg_notify('tasktable', queue)`` in its own transaction, so the notice is
  delivered at commit (or never, on rollback); a worker keeps one connection
  that ``LISTEN``s on that channel.
- SQLite (``Capabilities.same_host_wakeup``): every worker is on the same host
  as the file; a dedicated read connection polls ``PRAGMA data_version``
  (which changes when another connection commits) every ~2 ms: one cheap
  read, no lock, no write.
- Otherwise (MariaDB) there is nothing to listen to: the worker polls.

A listener calls ``on_wake(queue)`` (``queue`` is ``None`` when unknown) from
its own thread. It returns when ``stop`` is set, and raises on a lost
connection; the caller reconnects with back-off (polling goes on meanwhile).
"""

from __future__ import annotations

import os
import selectors
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, text

CHANNEL = "tasktable"
NOTIFY_SQL = text("SELECT pg_notify('tasktable', q) FROM unnest(CAST(:queues AS text[])) AS q")
DATA_VERSION_POLL = 0.002  # seconds between two reads of PRAGMA data_version
#: Seconds a LISTEN connection waits before looking at ``stop`` when nobody can interrupt
#: its wait (no ``interrupt`` descriptor): a stopping worker waits up to this long for
#: its listener. 0.5 made every PostgreSQL worker's exit half a second slower; 0.1
#: doubled an idle worker's CPU (0.5% -> 1.2% of a core).
LISTEN_TICK = 0.2
#: With an ``interrupt`` descriptor (the worker's listener has one), a stop ends the
#: wait at once, and the wait looks at ``stop`` on its own only this often.
LISTEN_IDLE = 5.0

WakeFn = Callable[[str | None], None]


def listen_postgres(
    engine: Engine, on_wake: WakeFn, stop: threading.Event, interrupt: int | None = None
) -> None:
    """LISTEN on a connection taken out of the pool for good, until ``stop``.

    The thread sleeps in a selector (epoll on Linux) on the connection's socket and on
    ``interrupt`` (the read end of a pipe the stopping worker writes to), then
    takes what arrived with ``notifies(timeout=0)``, which also returns any
    notice psycopg kept back while the generator was not running.
    """
    raw = engine.raw_connection()
    conn: Any = raw.driver_connection  # a psycopg connection
    raw.detach()  # kept by this listener alone; closed, never returned to the pool
    try:
        conn.rollback()
        conn.autocommit = True
        conn.execute(f"LISTEN {CHANNEL}")
        on_wake(None)  # anything enqueued while nobody listened
        tick = LISTEN_TICK if interrupt is None else LISTEN_IDLE
        with selectors.DefaultSelector() as waits:  # epoll/kqueue: no FD_SETSIZE limit
            waits.register(conn.fileno(), selectors.EVENT_READ)
            if interrupt is not None:
                waits.register(interrupt, selectors.EVENT_READ)
            while not stop.is_set():
                for notice in conn.notifies(timeout=0):
                    on_wake(notice.payload or None)
                for key, _ in waits.select(tick):
                    if key.fd == interrupt:
                        os.read(key.fd, 64)  # the loop's test of ``stop`` decides
    finally:
        raw.close()


def listen_sqlite(engine: Engine, on_wake: WakeFn, stop: threading.Event) -> None:
    """Poll ``PRAGMA data_version`` on a connection of its own until ``stop`` (every
    ``DATA_VERSION_POLL``: short enough that a stop needs no interrupt)."""
    database = engine.url.database
    assert database is not None
    import sqlite3  # here, not at import: a PostgreSQL or MariaDB worker never loads it

    conn: Any = sqlite3.connect(database, timeout=30, check_same_thread=False)
    try:
        conn.isolation_level = None  # autocommit: each read sees the latest commit
        seen = conn.execute("PRAGMA data_version").fetchone()[0]
        on_wake(None)
        while not stop.wait(DATA_VERSION_POLL):
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            if version != seen:
                seen = version
                on_wake(None)
    finally:
        conn.close()
