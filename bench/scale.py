"""Scale: claim latency and drain rate with 1,000,000 finished rows vs an empty table.

One run: pending tasks in an empty table, measured; then a million finished
rows (``INSERT ... SELECT generate_series``; older than the pending ones, as
history is), ``ANALYZE``, fresh pending tasks, measured again. Also timed at
each size: the first page of the task list and the counts by status (the
dashboard's two reads), through the public API.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from sqlalchemy import text

from tasktable import TaskTable

from .config import Sizes
from .databases import Database, analyze
from .procs import spawn_worker, wait_all
from .stats import median
from .table import finished_times, load, open_table

_HISTORY = """
INSERT INTO tasktable_task (name, handler, args, status, messages, created_at, executed_at,
    finished_at, queue, priority, run_at, attempts, max_attempts, cancel_requested, lost_count)
SELECT 'noop', 'bench.handlers:noop', '{}', 'success', '[]',
    now() - interval '1 day' + g * interval '1 millisecond',
    now() - interval '1 day' + g * interval '1 millisecond',
    now() - interval '1 day' + g * interval '1 millisecond',
    'default', 0, now() - interval '1 day', 1, 1, false, 0
FROM generate_series(1, :rows) AS g
"""


def _claims(table: TaskTable, count: int, slots: int) -> list[float]:
    """Seconds per ``claim(limit=slots)``; each claimed batch is then marked done."""
    storage = table.storage
    worker = f"bench-{secrets.token_hex(4)}"
    took: list[float] = []
    for _ in range(count):
        started = time.perf_counter()
        claimed = storage.claim(worker, (), slots)
        took.append(time.perf_counter() - started)
        if not claimed:
            raise RuntimeError("no pending task left to claim")
        with storage.engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE tasktable_task SET status = 'success', finished_at = now(),"
                    " claim_token = NULL WHERE id = ANY(:ids)"
                ),
                {"ids": [t.id for t in claimed]},
            )
    return took


def _timed(fn: Any, repeat: int = 5) -> float:
    took = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        took.append(time.perf_counter() - started)
    return (median(took) or 0.0) * 1000


def _phase(db: Database, table: TaskTable, sizes: Sizes) -> dict[str, Any]:
    claims_needed = sizes.scale_claims * sizes.slots
    with table.storage.engine.connect() as conn:
        first_id = int(
            conn.execute(text("SELECT coalesce(max(id), 0) FROM tasktable_task")).scalar() or 0
        )
    load(table, claims_needed + sizes.scale_pending)
    took = _claims(table, sizes.scale_claims, sizes.slots)
    spawned = time.time()
    wait_all([spawn_worker(db.url, slots=sizes.slots, mode=None, burst=True)], sizes.timeout)
    times = finished_times(table, claims_needed + sizes.scale_pending, after_id=first_id)
    return {
        "claim_ms_p50": (median(took) or 0.0) * 1000,
        "drain_per_s": sizes.scale_pending / (times.last_finish - spawned),
        "list_first_page_ms": _timed(lambda: table.list(limit=50)),
        "stats_ms": _timed(table.stats),
    }


def scale(db: Database, sizes: Sizes) -> dict[str, Any]:
    with open_table(db.url) as table:
        empty = _phase(db, table, sizes)
        with table.storage.engine.begin() as conn:
            conn.execute(text(_HISTORY), {"rows": sizes.scale_history})
        analyze(db.url)
        history = _phase(db, table, sizes)
    return {
        "value": history["claim_ms_p50"] / empty["claim_ms_p50"],
        "empty": empty,
        "history": history,
        "history_rows": sizes.scale_history,
        "claim_ratio": history["claim_ms_p50"] / empty["claim_ms_p50"],
        "drain_ratio": history["drain_per_s"] / empty["drain_per_s"],
    }
