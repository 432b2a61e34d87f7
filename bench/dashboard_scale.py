"""The dashboard at scale: its grid's first page and counts with 1,000,000 tasks on PostgreSQL.

A fixture script, not a timed test. It creates a scratch database, migrates it,
generates the rows with one ``INSERT ... SELECT generate_series`` (a realistic
mix: 90% success, 5% error, 4% pending, 1% cancelled and 50 running, on three
queues, with messages and action links), runs ``ANALYZE``, logs in, and times
requests through the whole ASGI app (``tasktable.web.create_app``, as
``tasktable serve`` runs it) with httpx: the grid's first page (rows and counts
per status together, as a browser gets them), a status tab, the next page, a
task page and the live-refresh JSON; and, for the breakdown, the operations
behind the grid (``list_tasks`` and ``status_counts``) alone. It measures twice:
just after the load, and after ``VACUUM ANALYZE`` (the state autovacuum keeps a
table in: with a visibility map, the capped counts are index-only scans).

Standalone::

    python -m bench.dashboard_scale [--rows 1000000] [--repeat 15] [--json]

The bench harness (issue 6) may call :func:`run` and report its dict.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import create_engine, make_url, text

DEFAULT_ADMIN_URL = os.environ.get(
    "TASKTABLE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
BUDGET_MS = 300.0  # the target for the grid's first page with counts

_ROWS = """
INSERT INTO tasktable_task (name, handler, args, status, messages, created_at, executed_at,
    finished_at, action_link, queue, priority, run_at, attempts, max_attempts,
    progress_done, progress_total, cancel_requested, lost_count)
SELECT
    CASE g % 4 WHEN 0 THEN '90 - Delivered | Update Status' WHEN 1 THEN 'Export orders to CSV'
        WHEN 2 THEN 'Import supplier feed' ELSE 'Send shipping email' END,
    CASE g % 4 WHEN 0 THEN 'shop.tasks:SetMassDeliveredHandler'
        WHEN 1 THEN 'shop.tasks:ExportOrdersCsvHandler'
        WHEN 2 THEN 'shop.tasks:ImportFeedHandler' ELSE 'shop.tasks:ShippingEmailHandler' END,
    '{"order_ids": [' || g || ', ' || (g + 1) || ']}',
    s.status,
    CASE WHEN s.status IN ('success', 'error')
        THEN '[{"text": "Order statuses updated.", "level": "info", "time": "2026-01-01T00:00:00+00:00"}]'
        ELSE '[]' END,
    now() - (:rows - g) * interval '100 milliseconds',
    CASE WHEN s.status <> 'pending' THEN now() - (:rows - g) * interval '100 milliseconds' END,
    CASE WHEN s.status IN ('success', 'error', 'cancelled')
        THEN now() - (:rows - g) * interval '100 milliseconds' + interval '2 seconds' END,
    CASE WHEN g % 4 = 1 AND s.status = 'success'
        THEN '{"text": "Download CSV", "route_path": "tasks/' || g || '/files/orders.csv", "route_params": null}'
        END,
    CASE g % 3 WHEN 0 THEN 'default' WHEN 1 THEN 'emails' ELSE 'reports' END,
    0,
    now() - (:rows - g) * interval '100 milliseconds',
    CASE WHEN s.status = 'pending' THEN 0 ELSE 1 END,
    3,
    CASE WHEN s.status = 'running' THEN g % 100 END,
    CASE WHEN s.status = 'running' THEN 100 END,
    false,
    0
FROM generate_series(1, :rows) AS g
CROSS JOIN LATERAL (
    SELECT CASE
        WHEN g % 20000 = 0 THEN 'running'
        WHEN g % 100 < 90 THEN 'success'
        WHEN g % 100 < 95 THEN 'error'
        WHEN g % 100 < 99 THEN 'pending'
        ELSE 'cancelled' END AS status
) AS s
"""


def _stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(p95 * 1000, 1),
        "min_ms": round(ordered[0] * 1000, 1),
    }


def _time(call: Callable[[], Any], repeat: int) -> dict[str, float]:
    call()  # warm up (connections, plans, templates)
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return _stats(samples)


async def _time_async(call: Callable[[], Awaitable[Any]], repeat: int) -> dict[str, float]:
    await call()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - start)
    return _stats(samples)


def _maintenance(url: str, statement: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


def generate(url: str, rows: int) -> float:
    """Insert ``rows`` tasks and ANALYZE; return the seconds it took."""
    engine = create_engine(url)
    start = time.perf_counter()
    try:
        with engine.begin() as conn:
            conn.execute(text(_ROWS), {"rows": rows})
    finally:
        engine.dispose()
    _maintenance(url, "ANALYZE tasktable_task")
    return time.perf_counter() - start


def _measure(table: Any, password: str, repeat: int) -> dict[str, Any]:
    from tasktable.ops import Operations, TaskQuery

    ops = Operations(table)
    result: dict[str, Any] = {
        "ops_list_first_page": _time(lambda: ops.list_tasks(limit=50), repeat),
        "ops_status_counts": _time(lambda: ops.status_counts(TaskQuery()), repeat),
    }
    result.update(asyncio.run(_through_the_app(table, password, repeat)))
    return result


async def _through_the_app(table: Any, password: str, repeat: int) -> dict[str, Any]:
    import httpx

    from tasktable.web import create_app

    base = "http://bench"
    app = create_app(table)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=base) as client:
        page = await client.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token, "no login form"
        answer = await client.post(
            "/login",
            data={"csrf": token.group(1), "name": "bench", "password": password},
            headers={"Origin": base},
        )
        assert answer.status_code == 303, answer.text

        async def get(path: str) -> httpx.Response:
            response = await client.get(path)
            assert response.status_code == 200, (path, response.status_code)
            return response

        first = await get("/")
        found = re.search(r'href="([^"]+)" rel="next"', first.text)
        assert found, "no next page"
        next_page = found.group(1).replace("&amp;", "&")
        task_id = re.search(r'name="ids" value="(\d+)"', first.text)
        assert task_id
        running = ",".join(re.findall(r'data-id="(\d+)" data-live', first.text)[:50]) or "1"
        return {
            "grid_first_page_with_counts": await _time_async(lambda: get("/"), repeat),
            "grid_status_error": await _time_async(lambda: get("/?status=error"), repeat),
            "grid_next_page": await _time_async(lambda: get(next_page), repeat),
            "task_page": await _time_async(lambda: get(f"/tasks/{task_id.group(1)}"), repeat),
            "live_json": await _time_async(lambda: get(f"/live.json?ids={running}"), repeat),
            "counts_shown": re.findall(r'data-count="(\w+)">([^<]+)<', first.text),
        }


def run(
    admin_url: str = DEFAULT_ADMIN_URL, rows: int = 1_000_000, repeat: int = 15
) -> dict[str, Any]:
    """Measure on a scratch database (dropped afterwards); return the timings."""
    from tasktable import TaskTable
    from tasktable.auth import Identity

    name = f"tt_dash_{secrets.token_hex(4)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        with TaskTable(url) as table:
            table.migrate()
            seconds = generate(url, rows)
            password = secrets.token_urlsafe(12)
            Identity(table).add_user("bench", "operator", password)
            # Just loaded: ANALYZE only, no visibility map yet, so index-only scans
            # still visit the heap. Then steady state, as autovacuum leaves a table.
            just_loaded = _measure(table, password, repeat)
            _maintenance(url, "VACUUM ANALYZE tasktable_task")
            steady = _measure(table, password, repeat)
            grid = steady["grid_first_page_with_counts"]
            return {
                "database": "postgresql",
                "rows": rows,
                "generate_seconds": round(seconds, 1),
                "just_loaded": just_loaded,
                "steady": steady,
                "budget_ms": BUDGET_MS,
                "within_budget": grid["p95_ms"] <= BUDGET_MS,
            }
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_ADMIN_URL, help="PostgreSQL admin URL")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    result = run(args.url, args.rows, args.repeat)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"Dashboard at scale: {result['rows']:,} tasks on PostgreSQL "
        f"(generated in {result['generate_seconds']} s)"
    )
    for phase, title in (
        ("just_loaded", "just loaded (ANALYZE only)"),
        ("steady", "steady state (after VACUUM ANALYZE, as autovacuum leaves a table)"),
    ):
        print(f" {title}:")
        for key, value in result[phase].items():
            if isinstance(value, dict):
                print(
                    f"  {key:<30} median {value['median_ms']:>7} ms   "
                    f"p95 {value['p95_ms']:>7} ms   min {value['min_ms']:>7} ms"
                )
    counts = result["steady"]["counts_shown"]
    print("  counts shown: " + ", ".join(f"{s} {n}" for s, n in counts))
    verdict = "within" if result["within_budget"] else "OVER"
    print(f"  grid first page with counts, steady state: p95 {verdict} {BUDGET_MS:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
