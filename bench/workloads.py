"""tasktable's own workloads: enqueue, enqueue_many, drain, latency, overhead, memory.

Each takes a fresh, empty :class:`~bench.databases.Database` and returns a dict
whose ``value`` is the headline figure; the other keys are kept in the JSON.
Workers are real ``tasktable worker`` processes; times come from the table
(the database clock), so a worker's start-up and the harness's own polling
stay out of the figures unless a figure says otherwise.
"""

from __future__ import annotations

import time
from typing import Any

from .config import Sizes
from .cpu import CpuWindow
from .databases import Database
from .handlers import NOOP, SLEEP50
from .procs import memory, spawn_worker, stop, wait_all
from .stats import percentile
from .table import (
    count_success,
    finished_times,
    load,
    open_table,
    wait_registered,
    wait_success,
    warm_up,
)

Result = dict[str, Any]


def enqueue(db: Database, sizes: Sizes) -> Result:
    """``TaskTable.enqueue`` one task at a time from one thread (tasks/s)."""
    with open_table(db.url) as table:
        table.enqueue(NOOP)  # connect and import outside the clock
        started = time.perf_counter()
        for _ in range(sizes.enqueue):
            table.enqueue(NOOP)
        elapsed = time.perf_counter() - started
    return {"value": sizes.enqueue / elapsed, "seconds": elapsed, "tasks": sizes.enqueue}


def enqueue_many(db: Database, sizes: Sizes) -> Result:
    """``TaskTable.enqueue_many`` in batches of ``sizes.batch`` (tasks/s)."""
    with open_table(db.url) as table:
        table.enqueue(NOOP)
        items = [{"handler": NOOP}] * sizes.batch
        started = time.perf_counter()
        for start in range(0, sizes.enqueue_many, sizes.batch):
            table.enqueue_many(items[: min(sizes.batch, sizes.enqueue_many - start)])
        elapsed = time.perf_counter() - started
    return {
        "value": sizes.enqueue_many / elapsed,
        "seconds": elapsed,
        "tasks": sizes.enqueue_many,
        "batch": sizes.batch,
    }


def drain(db: Database, sizes: Sizes, *, workers: int, mode: str | None) -> Result:
    """``sizes.drain`` pending no-op tasks, burst workers started together (tasks/s).

    ``value`` counts from the workers' spawn to the last success (start-up
    included); ``active_per_s`` from the first claim to the last success.
    """
    with open_table(db.url) as table:
        load(table, sizes.drain)
        cpu = CpuWindow.start()
        spawned = time.time()
        procs = [
            spawn_worker(db.url, slots=sizes.slots, mode=mode, burst=True) for _ in range(workers)
        ]
        cpu.track(p.pid for p in procs)
        wait_all(procs, sizes.timeout)
        cpu_used = cpu.result(sizes.drain)
        times = finished_times(table, sizes.drain)
    wall = times.last_finish - spawned
    active = times.last_finish - times.first_start
    return {
        "value": sizes.drain / wall,
        "active_per_s": sizes.drain / active,
        "wall_s": wall,
        "startup_s": times.first_start - spawned,
        "tasks": sizes.drain,
        "workers": workers,
        "slots": sizes.slots,
        "mode": mode or "default",
        "exactly_once": True,
        **cpu_used,
    }


def latency(db: Database, sizes: Sizes, *, mode: str | None) -> Result:
    """An idle worker; tasks enqueued ``latency_interval`` apart; executed_at - created_at (ms)."""
    with open_table(db.url) as table:
        proc = spawn_worker(db.url, slots=sizes.slots, mode=mode, burst=False)
        try:
            wait_registered(table, 1)
            last = warm_up(table)
            time.sleep(1.0)  # idle: the worker waits for work, whatever its strategy
            started = time.monotonic()
            for i in range(sizes.latency):
                pause = started + i * sizes.latency_interval - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                table.enqueue(NOOP)
            wait_success(table, sizes.latency, sizes.timeout, after_id=last)
        finally:
            stop(proc)
        lat = finished_times(table, sizes.latency, after_id=last).latencies_ms()
    return {
        "value": percentile(lat, 50),
        "p50_ms": percentile(lat, 50),
        "p99_ms": percentile(lat, 99),
        "max_ms": max(lat),
        "tasks": sizes.latency,
        "mode": mode or "default",
    }


def overhead(db: Database, sizes: Sizes, *, mode: str | None) -> Result:
    """Tasks sleeping ``overhead_sleep`` on one worker's slots: first start to last finish (s)."""
    with open_table(db.url) as table:
        load(table, sizes.overhead, handler=SLEEP50)
        proc = spawn_worker(db.url, slots=sizes.slots, mode=mode, burst=True)
        wait_all([proc], sizes.timeout)
        times = finished_times(table, sizes.overhead)
    ideal = sizes.overhead * sizes.overhead_sleep / sizes.slots
    span = times.last_finish - times.first_start
    return {
        "value": span,
        "ideal_s": ideal,
        "overhead_pct": (span / ideal - 1) * 100,
        "tasks": sizes.overhead,
        "mode": mode or "default",
    }


def worker_memory(db: Database, sizes: Sizes, *, mode: str | None) -> Result:
    """RSS of one worker (and its slot processes) idle, then peak while draining (MB)."""
    with open_table(db.url) as table:
        proc = spawn_worker(db.url, slots=sizes.slots, mode=mode, burst=False)
        try:
            wait_registered(table, 1)
            last = warm_up(table)
            time.sleep(1.0)
            idle = memory(proc.pid)
            table.enqueue_many([{"handler": NOOP}] * sizes.memory)
            peak = idle
            deadline = time.monotonic() + sizes.timeout
            while count_success(table, after_id=last) < sizes.memory:
                sample = memory(proc.pid)
                if sample["total_rss_mb"] > peak["total_rss_mb"]:
                    peak = sample
                if time.monotonic() > deadline:
                    raise RuntimeError("memory drain did not finish")
                time.sleep(0.05)
        finally:
            stop(proc)
    per_slot = idle["child_rss_mb"] if idle["children"] else idle["total_rss_mb"] / sizes.slots
    return {
        "value": idle["parent_rss_mb"],
        "idle": idle,
        "drain_peak": peak,
        "per_slot_idle_mb": per_slot,
        "slots": sizes.slots,
        "mode": mode or "default",
    }
