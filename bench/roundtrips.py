"""Round trips: database statements per task while one worker drains the table.

The worker runs in this process (thread slots) so that SQLAlchemy's events
see every statement it sends (and a wrapper the ones it sends on the driver's
own connection, ``_driver_rows``): ``before_cursor_execute`` (statements),
``commit``/``rollback`` (transaction ends), and the pings sent on checkout
(on servers, for a connection idle a second or more: ``engine.py``). pg_stat_statements
would need a server restart to load, so it is not used.
"""

from __future__ import annotations

import inspect
import re
import time
from collections import Counter
from typing import Any

from sqlalchemy import event

from .config import Sizes
from .databases import Database
from .table import finished_times, load, open_table

_WORDS = re.compile(r"\s+")
_TABLE = re.compile(r"(?:FROM|INTO|UPDATE)\s+[\"`]?(\w+)", re.IGNORECASE)


def _kind(statement: str) -> str:
    """A short label for a statement: its verb, its table, and whether it claims."""
    flat = _WORDS.sub(" ", statement.strip())
    verb = flat.split(" ", 1)[0].upper()
    found = _TABLE.search(flat)
    table = found.group(1) if found else ""
    if "'running'" in flat or "SKIP LOCKED" in flat.upper():
        table += " (claim)"
    return f"{verb} {table}".strip()


def _new_worker(table: Any, slots: int) -> Any:
    from tasktable.worker.supervisor import Worker

    options: dict[str, Any] = {"slots": slots, "burst": True}
    if "mode" in inspect.signature(Worker).parameters:
        options["mode"] = "thread"
    return Worker(table, **options)


def roundtrips(db: Database, sizes: Sizes) -> dict[str, Any]:
    with open_table(db.url) as table:
        load(table, sizes.roundtrips)
        # Every engine the storage uses (the worker's claims and outcomes may have
        # their own); a checkout costs a round trip only where the pool pre-pings.
        storage = table.storage
        engines = [e for e in (storage.engine, getattr(storage, "hot_engine", None)) if e]
        kinds: Counter[str] = Counter()
        counts = Counter[str]()

        def on_execute(*args: Any) -> None:
            kinds[_kind(args[2])] += 1

        listeners = {
            "before_cursor_execute": on_execute,
            "commit": lambda *_: counts.update(["commit"]),
            "rollback": lambda *_: counts.update(["rollback"]),
        }
        for engine in engines:
            for name, fn in listeners.items():
                event.listen(engine, name, fn)
            if getattr(engine.pool, "_pre_ping", False):
                event.listen(engine.pool, "checkout", lambda *_: counts.update(["checkout"]))
            ping = engine.dialect.do_ping  # pings tasktable's own checkout event sends

            def counted_ping(conn: Any, ping: Any = ping) -> Any:
                counts.update(["checkout"])
                return ping(conn)

            engine.dialect.do_ping = counted_ping  # type: ignore[method-assign]
        # Statements sent on the driver's own connection (autocommitted: one round trip
        # each; the pool checkout around them is counted above) bypass SQLAlchemy's
        # events: count them where the storage sends them.
        driver = getattr(storage, "_driver_rows", None)
        if driver is not None:

            def counted(sql: str, params: Any, engine: Any = None) -> Any:
                kinds[_kind(sql) + " (driver)"] += 1
                return driver(sql, params, engine)

            storage._driver_rows = counted  # type: ignore[method-assign]
        worker = _new_worker(table, sizes.slots)
        started = time.perf_counter()
        try:
            worker.run()
        finally:
            if driver is not None:
                del storage._driver_rows
        elapsed = time.perf_counter() - started
        for engine in engines:
            for name, fn in listeners.items():
                event.remove(engine, name, fn)
            del engine.dialect.do_ping  # the class's own again
        finished_times(table, sizes.roundtrips)
    begins = kinds.pop("BEGIN", 0)  # SQLite's explicit BEGIN IMMEDIATE: a transaction start
    statements = sum(kinds.values())
    pings = counts["checkout"] if db.backend != "sqlite" else 0
    n = sizes.roundtrips
    return {
        "value": statements / n,
        "statements_per_task": statements / n,
        "commits_per_task": counts["commit"] / n,
        "rollbacks_per_task": counts["rollback"] / n,
        "pings_per_task": pings / n,
        "round_trips_per_task": (
            statements + begins + counts["commit"] + counts["rollback"] + pings
        )
        / n,
        "by_statement": dict(kinds.most_common()),
        "tasks": n,
        "in_process_per_s": n / elapsed,
    }
