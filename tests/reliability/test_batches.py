"""Batches: a process slot is sent several buffered tasks in one write.

The pool's rules for a batch (``SlotPool.next_batch``), and real worker
processes: tasks sent in batches run exactly once; when the slot process dies
in the middle of a batch, the tasks behind the one it was running go back to
pending uncharged and run elsewhere; a batch behind a long run is taken back
(``SlotPool.requeue``, ``ProcessRunner.revoke``).
"""

from __future__ import annotations

from typing import Any

import pytest

from tasktable import TaskTable
from tasktable.core.task import Task
from tasktable.worker.slots import BATCH_MAX, PREFETCH_HORIZON, SlotPool

from .conftest import WORK, Cluster, H, slot_pool

pytestmark = pytest.mark.reliability


@pytest.fixture
def pool(sqlite_url: str) -> SlotPool:
    return slot_pool(sqlite_url, "process")


def buffer(pool: SlotPool, sqlite_url: str, count: int) -> list[Task]:
    table = TaskTable(sqlite_url)
    tasks = [table.enqueue(WORK) for _ in range(count)]
    pool.buffer.extend((task, 0.0) for task in tasks)
    return tasks


def test_a_batch_is_a_fair_share_of_what_the_slots_start_within_the_horizon(
    pool: SlotPool, sqlite_url: str
) -> None:
    tasks = buffer(pool, sqlite_url, 30)
    assert pool.next_batch() == []  # no run seen yet: nothing known about run times
    pool.ran(0.001)
    pool.unwritten_limit = 100  # as the worker sets it: its prefetch limit
    for slot in pool.slots:
        slot.ready = True
    batch = pool.next_batch()
    assert batch == tasks[:BATCH_MAX]  # in claim order, at most BATCH_MAX
    pool.run_time = PREFETCH_HORIZON / 3  # only 3 runs fit in the horizon
    assert pool.next_batch() == tasks[BATCH_MAX : BATCH_MAX + 3]
    pool.run_time = PREFETCH_HORIZON * 2  # long runs: no batch
    assert pool.next_batch() == []
    pool.run_time = 0.001
    left = len(pool.buffer)
    pool.buffer = type(pool.buffer)(list(pool.buffer)[:3])  # 3 buffered for 2 ready slots
    assert len(pool.next_batch()) == 1  # each slot's share: 3 // 2
    assert left > 3
    pool.slots[0].queued.extend(tasks[:BATCH_MAX])  # counted as claimed ahead
    assert [t.id for t in pool.buffered()][-BATCH_MAX:] == [t.id for t in tasks[:BATCH_MAX]]
    pool.unwritten_limit = BATCH_MAX + 1  # the queued count against unwritten outcomes
    pool.buffer.extend((task, 0.0) for task in tasks[20:])
    assert len(pool.next_batch()) == 1
    pool.releasing.set()  # a stopping pool starts nothing new
    assert pool.next_batch() == []


def started_once(cluster: Cluster, ids: list[int]) -> bool:
    starts = cluster.starts()
    return all(starts.get(i) == 1 for i in ids)


@pytest.mark.timeout(180)
def test_batched_tasks_run_once_and_a_crash_mid_batch_gives_back_the_rest(lite: Cluster) -> None:
    items: list[dict[str, Any]] = []
    for _block in range(6):
        items += [{"handler": WORK, "args": {"ms": 0}}] * 60
        items.append({"handler": f"{H}:Poison"})
    ids = lite.enqueue(items)
    poison = [i for i, item in zip(ids, items, strict=True) if item["handler"].endswith("Poison")]
    work = [i for i in ids if i not in poison]
    worker = lite.start("--slots", "2", "--prefetch", "40", env={"TASKTABLE_VERBOSE": "1"})
    lite.wait_all_final(timeout=150)
    assert worker.alive(), "the worker died with its slot"
    assert lite.stop_all() == {"w1": 0}
    assert "queued behind it" in worker.log()  # batches were sent
    assert lite.by_status() == {"success": len(work), "error": len(poison)}
    # Each crash failed only its own task; those queued behind it in the dead process
    # went back uncharged and ran once, later.
    assert started_once(lite, work)
    assert all(lite.table.get(i).attempts == 1 for i in work)
    assert all(lite.table.get(i).attempts == 2 for i in poison)  # Poison.max_attempts
    assert worker.log().count("died (exit code 13)") == 2 * len(poison)


@pytest.mark.timeout(120)
def test_a_batch_behind_a_long_run_goes_to_the_other_slot(lite: Cluster) -> None:
    quick = lite.enqueue([{"handler": WORK, "args": {"ms": 0}}] * 200)
    slow = lite.enqueue([{"handler": WORK, "args": {"ms": 4000}}])
    after = lite.enqueue([{"handler": WORK, "args": {"ms": 0}}] * 40)
    worker = lite.start(
        "--slots", "2", "--prefetch", "40", "--burst", env={"TASKTABLE_VERBOSE": "1"}
    )
    assert worker.wait(120) == 0
    assert lite.by_status() == {"success": len(quick) + len(slow) + len(after)}
    assert started_once(lite, quick + slow + after)
    # Nothing waited out the long run: the other slot ran every task after it.
    slow_task = lite.table.get(slow[0])
    assert slow_task.finished_at is not None
    ended = [lite.table.get(i).finished_at for i in after]
    assert all(t is not None and t < slow_task.finished_at for t in ended)
