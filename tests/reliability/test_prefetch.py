"""Prefetch: tasks claimed ahead of a free slot while runs are short.

The buffer's rules (``SlotPool``): how much to claim ahead, which tasks may
wait in it, and taking tasks out. Then real worker processes: tasks claimed
ahead run exactly once, a buffered task that waits too long goes back to
pending uncharged, and a stopping worker gives its buffer back.
"""

from __future__ import annotations

import signal
import time

import pytest

from tasktable import TaskTable
from tasktable.core.task import Task
from tasktable.worker.slots import PREFETCH_HORIZON, PREFETCH_LONG_RUN, SlotPool
from tasktable.worker.supervisor import PREFETCH_MAX_WAIT

from .conftest import WORK, Cluster, slot_pool, wait_for

pytestmark = pytest.mark.reliability


@pytest.fixture
def pool(sqlite_url: str) -> SlotPool:
    return slot_pool(sqlite_url, "thread")


def tasks(sqlite_url: str, count: int) -> list[Task]:
    table = TaskTable(sqlite_url)
    return [table.enqueue(WORK) for _ in range(count)]


def test_no_prefetch_before_a_run_or_when_turned_off(pool: SlotPool) -> None:
    assert pool.room(10) == 0  # no run seen yet: nothing known about run times
    pool.ran(0.001)
    assert pool.room(0) == 0


def test_prefetch_claims_what_the_slots_start_within_the_horizon(
    pool: SlotPool, sqlite_url: str
) -> None:
    pool.ran(0.001)
    assert pool.room(10) == 0  # no slot is ready yet: none will free up
    for slot in pool.slots:
        slot.ready = True
    assert pool.room(10) == 10  # 2 slots x 50 ms / 1 ms = 100, capped at 10
    pool.run_time = PREFETCH_HORIZON  # each run takes the whole horizon: 2 slots, 2 ahead
    assert pool.room(10) == 2
    pool.run_time = 10.0  # long runs: nothing claimed ahead
    assert pool.room(10) == 0
    pool.run_time = 0.001
    first, second, *rest = tasks(sqlite_url, 6)
    assert pool.offer([first, second, *rest]) == []  # one to each idle slot, 4 buffered
    assert [t.id for t in pool.buffered()] == [t.id for t in rest]
    assert pool.room(10) == 6
    for slot in pool.slots:  # both slots in a run that has lasted long: none frees up soon
        assert slot.run is not None
        slot.run.started -= PREFETCH_LONG_RUN + 1
    assert pool.room(10) == 0


def test_a_task_that_may_not_be_rerun_never_waits_in_the_buffer(
    pool: SlotPool, sqlite_url: str
) -> None:
    plain, once = tasks(sqlite_url, 2)
    once = once.replace(rerun_on_loss=False)
    assert pool.offer([plain, once]) == [once]
    assert [t.id for t in pool.buffered()] == [plain.id]


def test_tasks_leave_the_buffer_by_id_by_age_or_all(pool: SlotPool, sqlite_url: str) -> None:
    a, b, c = tasks(sqlite_url, 3)
    pool.offer([a, b, c])
    assert pool.unbuffer([b.id]) == [b]
    assert pool.unbuffer(older_than=60) == []
    oldest = pool.oldest_wait()
    assert oldest is not None and 0 <= oldest < 60
    assert pool.unbuffer() == [a, c]
    assert pool.buffered() == [] and pool.oldest_wait() is None
    pool.releasing.set()  # a stopping pool buffers nothing more
    assert pool.offer([a]) == [a]


def long_after_short(
    cluster: Cluster, short: int, long: int, ms: int
) -> tuple[list[int], list[int]]:
    quick = cluster.enqueue([{"handler": WORK, "args": {"ms": 0}}] * short)
    slow = cluster.enqueue([{"handler": WORK, "args": {"ms": ms}}] * long)
    return quick, slow


def pending_uncharged(cluster: Cluster, ids: list[int]) -> list[int]:
    return [
        i for i in ids if (t := cluster.table.get(i)).status.value == "pending" and t.attempts == 0
    ]


@pytest.mark.timeout(120)
def test_claimed_ahead_run_once_and_a_long_wait_gives_them_back(lite: Cluster) -> None:
    quick, slow = long_after_short(lite, 40, 4, 2500)
    worker = lite.start("--slots", "1", "--prefetch", "4")
    worker_id = lite.wait_registered(worker)
    # While the short runs flow, more tasks are running than there are slots...
    wait_for(lambda: len(lite.running_of(worker_id)) > 1, 60, "tasks claimed ahead", 0.02)
    # ...and when a long run holds the slot, what waited behind it goes back to pending,
    # its attempt not charged, for any worker.
    wait_for(lambda: slow[0] in lite.starts(), 60, "the first long task started", 0.05)
    started = time.monotonic()
    wait_for(lambda: pending_uncharged(lite, slow[1:]), 10, "a buffered task given back", 0.05)
    assert time.monotonic() - started < PREFETCH_MAX_WAIT + 1.0
    assert len(lite.starts()) < len(quick) + len(slow)
    lite.wait_all_final(timeout=60)
    assert lite.stop_all() == {"w1": 0}
    assert lite.by_status() == {"success": len(quick) + len(slow)}
    assert all(n == 1 for n in lite.starts().values())
    assert all(lite.table.get(i).attempts == 1 for i in quick + slow)


@pytest.mark.timeout(120)
def test_a_stopping_worker_gives_its_buffer_back(lite: Cluster) -> None:
    _quick, slow = long_after_short(lite, 40, 5, 4000)
    worker = lite.start("--slots", "1", "--prefetch", "4", "--grace", "1s")
    worker_id = lite.wait_registered(worker)

    def holding_ahead() -> bool:
        return slow[0] in lite.starts() and len(lite.running_of(worker_id)) > 1

    wait_for(holding_ahead, 60, "a long run with tasks claimed ahead", 0.02)
    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    assert lite.running_of(worker_id) == set()
    never_started = [i for i in slow if i not in lite.starts()]
    assert never_started and set(pending_uncharged(lite, never_started)) == set(never_started)
    assert "Traceback" not in worker.log()


@pytest.mark.timeout(120)
def test_a_buffered_task_cancelled_never_starts(lite: Cluster) -> None:
    _quick, slow = long_after_short(lite, 40, 3, 3000)
    worker = lite.start("--slots", "1", "--prefetch", "4")
    worker_id = lite.wait_registered(worker)

    def buffered() -> bool:
        return slow[0] in lite.starts() and slow[1] in lite.running_of(worker_id)

    wait_for(buffered, 60, "a long run with the next task claimed ahead", 0.02)
    assert lite.table.cancel(slow[1]) == ([], [slow[1]])  # running, as far as the table says
    wait_for(lambda: lite.table.get(slow[1]).status.value == "cancelled", 10, "cancelled")
    lite.wait_all_final(timeout=60)
    assert lite.stop_all() == {"w1": 0}
    assert slow[1] not in lite.starts()
    assert lite.table.get(slow[2]).status.value == "success"
