"""The claim: due pending tasks, priority then id, each to exactly one claimer."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest

from tasktable import TaskTable
from tasktable.core.status import TaskStatus
from tasktable.settings import Settings

from .helpers import ECHO, claim_all, make_status, register, shift, shift_worker


def test_claim_order_is_priority_then_id(table: TaskTable) -> None:
    priorities = [0, 5, 5, -1, 10, 0, -100, 100]
    ids = [table.enqueue(ECHO, priority=p).id for p in priorities]
    claimed = claim_all(table, register(table))
    expected = [
        i for _, i in sorted(zip(priorities, ids, strict=True), key=lambda x: (-x[0], x[1]))
    ]
    assert [t.id for t in claimed] == expected


def test_claim_takes_the_best_first_across_calls(table: TaskTable) -> None:
    low = table.enqueue(ECHO, priority=0).id
    high = [table.enqueue(ECHO, priority=9).id for _ in range(3)]
    worker = register(table)
    assert [t.id for t in table.storage.claim(worker, (), 2)] == high[:2]
    assert [t.id for t in table.storage.claim(worker, (), 2)] == [high[2], low]
    assert table.storage.claim(worker, (), 2) == []


def test_claim_stamps_the_task(table: TaskTable) -> None:
    task = table.enqueue(ECHO, {"x": 1}, max_attempts=3)
    worker = register(table)
    [claimed] = table.storage.claim(worker, (), 5)
    assert claimed.status is TaskStatus.RUNNING
    assert claimed.attempts == 1
    assert claimed.worker == worker
    assert claimed.executed_at is not None and claimed.executed_at >= task.created_at
    assert claimed.heartbeat_at is not None
    assert claimed.claim_token and len(claimed.claim_token) == 32
    assert claimed.args == {"x": 1} and claimed.max_attempts == 3
    stored = table.get(task.id)
    assert stored.status is TaskStatus.RUNNING
    assert (stored.attempts, stored.worker, stored.executed_at) == (1, worker, claimed.executed_at)


def test_each_claim_gets_a_fresh_token(table: TaskTable) -> None:
    table.enqueue(ECHO)
    table.enqueue(ECHO)
    worker = register(table)
    first = table.storage.claim(worker, (), 1)[0].claim_token
    second = table.storage.claim(worker, (), 1)[0].claim_token
    assert first != second


def test_a_task_due_later_is_not_claimed(table: TaskTable) -> None:
    later = table.enqueue(ECHO, delay="1h")
    worker = register(table)
    assert table.storage.claim(worker, (), 10) == []
    shift(table, later.id, run_at=1)
    assert [t.id for t in table.storage.claim(worker, (), 10)] == [later.id]


def test_a_task_due_later_waits_even_with_a_higher_priority(table: TaskTable) -> None:
    table.enqueue(ECHO, priority=100, delay="10m")
    now = table.enqueue(ECHO, priority=-100).id
    assert [t.id for t in claim_all(table, register(table))] == [now]


def test_queues_filter(table: TaskTable) -> None:
    emails = table.enqueue(ECHO, queue="emails").id
    reports = table.enqueue(ECHO, queue="reports").id
    default = table.enqueue(ECHO).id
    worker = register(table)
    assert table.storage.claim(worker, ("nothing-here",), 10) == []
    assert [t.id for t in table.storage.claim(worker, ("emails",), 10)] == [emails]
    assert [t.id for t in table.storage.claim(worker, ("reports", "default"), 10)] == [
        reports,
        default,
    ]


def test_an_empty_queue_list_means_every_queue(table: TaskTable) -> None:
    ids = [table.enqueue(ECHO, queue=q).id for q in ("a", "b", "default")]
    assert [t.id for t in claim_all(table, register(table))] == ids


def test_only_pending_tasks_are_claimed(table: TaskTable) -> None:
    for status in ("success", "error", "cancelled", "running"):
        make_status(table, TaskStatus(status))
    assert claim_all(table, register(table)) == []


def test_claim_limit(table: TaskTable) -> None:
    table.enqueue_many([{"handler": ECHO}] * 7)
    worker = register(table)
    assert len(table.storage.claim(worker, (), 5)) == 5
    assert len(table.storage.claim(worker, (), 5)) == 2


TASKS = 500
THREADS = 6


def test_every_task_is_claimed_exactly_once_by_concurrent_claimers(
    db_url: str, settings: Settings
) -> None:
    with TaskTable(db_url, settings=settings) as setup:
        setup.migrate()
        setup.enqueue_many(
            [{"handler": ECHO, "args": {"n": n}, "priority": n % 4} for n in range(TASKS)]
        )
    barrier = threading.Barrier(THREADS)
    claimed: dict[int, list[int]] = {}
    errors: list[BaseException] = []

    def claimer(index: int) -> None:
        mine: list[int] = []
        claimed[index] = mine
        try:
            with TaskTable(db_url, settings=settings) as table:
                worker = register(table, f"claimer-{index}")
                barrier.wait(timeout=60)
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    batch = table.storage.claim(worker, (), 3 + index)
                    mine.extend(t.id for t in batch)
                    if not batch and table.count(status="pending") == 0:
                        return
                    # As a worker between claims (it runs what it claimed): SQLite's
                    # lock waiters poll, and a claimer that never pauses can take the
                    # whole table before they look again.
                    time.sleep(0.001)
                raise AssertionError("claimers did not drain the table in time")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert not errors, errors
    counts = Counter(i for ids in claimed.values() for i in ids)
    assert len(counts) == TASKS
    assert set(counts.values()) == {1}, [i for i, c in counts.items() if c > 1]
    assert sum(1 for ids in claimed.values() if ids) > 1, "one claimer took everything"
    with TaskTable(db_url, settings=settings) as check:
        assert check.count(status="running") == TASKS
        owners = {t.id: t.worker for t in check.list(limit=1000).tasks}
        for index, ids in claimed.items():
            assert all(owners[i] == f"claimer-{index}" for i in ids)
        assert all(t.attempts == 1 for t in check.list(limit=1000).tasks)


def test_claim_uses_the_database_clock(table: TaskTable) -> None:
    task = table.enqueue(ECHO)
    claimed = claim_all(table, register(table))[0]
    server_now = table.storage.server_now()
    assert claimed.id == task.id
    assert claimed.executed_at is not None
    assert timedelta(0) <= server_now - claimed.executed_at < timedelta(minutes=1)


def test_a_claim_with_alive_within_needs_a_fresh_worker_row(table: TaskTable) -> None:
    task = table.enqueue(ECHO, queue="q")
    worker = register(table)
    storage = table.storage
    shift_worker(table, worker, 20)
    for queues in ((), ("q",)):
        assert storage.claim(worker, queues, 5, alive_within=15) == []
        assert storage.claim("never-registered", queues, 5, alive_within=15) == []
    assert table.get(task.id).status is TaskStatus.PENDING
    shift_worker(table, worker, 10)
    [claimed] = storage.claim(worker, ("q",), 5, alive_within=15)
    assert claimed.id == task.id and claimed.status is TaskStatus.RUNNING
    assert claimed.worker == worker and claimed.attempts == 1
    assert claimed.claim_token is not None and claimed.executed_at is not None
    assert claimed.executed_at.tzinfo is not None
    assert table.get(task.id) == claimed


@pytest.mark.parametrize("queue_count", [3, 40])
def test_claim_order_across_many_queues_and_priorities(table: TaskTable, queue_count: int) -> None:
    # SQLite reads each queue in index order up to 32 queues, and sorts every pending row
    # past that: both give the one order, priority then id, due tasks only.
    rng = random.Random(queue_count)
    queues = [f"q{i}" for i in range(queue_count)]
    items: list[dict[str, object]] = [
        {
            "handler": ECHO,
            "queue": rng.choice(queues),
            "priority": rng.randint(-2, 2),
            **({"delay": "1h"} if rng.random() < 0.2 else {}),
        }
        for _ in range(150)
    ]
    tasks = table.enqueue_many(items)
    due = [t for t in tasks if t.run_at <= t.created_at]
    worker = register(table)
    served = queues[: queue_count // 2 + 1]
    expected = [t.id for t in sorted(due, key=lambda t: (-t.priority, t.id)) if t.queue in served]
    got = []
    while batch := table.storage.claim(worker, served, 7):
        got += [t.id for t in batch]
    assert got == expected
    rest = [t.id for t in sorted(due, key=lambda t: (-t.priority, t.id)) if t.queue not in served]
    got = []
    while batch := table.storage.claim(worker, (), 9):
        got += [t.id for t in batch]
    assert got == rest


# The candidate read of a claim over every queue, as each server runs it (claim.py).
_PG_CANDIDATES = (
    "SELECT id FROM tasktable_task WHERE status = 'pending' AND run_at <= statement_timestamp()"
    " ORDER BY priority DESC, id LIMIT 50 FOR UPDATE SKIP LOCKED"
)
_MARIADB_CANDIDATES = (
    "SELECT id, priority FROM tasktable_task WHERE status = 'pending'"
    " AND run_at <= UTC_TIMESTAMP(6) ORDER BY priority DESC, id LIMIT 50"
)


def test_a_claim_over_every_queue_reads_pending_rows_in_order(
    table: TaskTable, backend: str
) -> None:
    """With no queue given, a claim reads the pending rows in claim order from the index of
    migration 0005 and stops after its rows: no sort of the whole backlog (5.6 ms on
    PostgreSQL and 16 ms on MariaDB at 20,000 pending rows, per claim, before it).
    SQLite reads each queue's rows in order instead (the test above)."""
    if backend == "sqlite":
        pytest.skip("SQLite's claim reads queue by queue in the claim index (see above)")
    table.enqueue_many(
        [{"handler": ECHO, "queue": f"q{i % 7}", "priority": i % 5} for i in range(3000)]
    )
    with table.storage.engine.begin() as conn:
        if backend == "postgresql":
            conn.exec_driver_sql("ANALYZE tasktable_task")
            plan = "\n".join(
                r[0] for r in conn.exec_driver_sql("EXPLAIN " + _PG_CANDIDATES).fetchall()
            )
            assert "ix_tasktable_task_pending" in plan, plan
            assert "Sort" not in plan, plan
        else:
            conn.exec_driver_sql("ANALYZE TABLE tasktable_task")
            row = conn.exec_driver_sql("EXPLAIN " + _MARIADB_CANDIDATES).mappings().one()
            assert row["key"] == "ix_tasktable_task_pending", dict(row)
            assert "filesort" not in (row["Extra"] or ""), dict(row)
