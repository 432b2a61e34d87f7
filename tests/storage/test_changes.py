"""Update, delete, retry, cancel, clean and stats: each move is conditional on the status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tasktable import TaskTable
from tasktable.core.status import TaskStatus
from tasktable.errors import InvalidInput, InvalidTransition, TaskNotFound
from tasktable.settings import Settings
from tasktable.storage.base import Outcome

from .helpers import (
    ECHO,
    claim_one,
    column,
    file_rows,
    finish,
    make_status,
    register,
    row_count,
    shift,
    snapshot,
)

DAY = 86400.0
FINAL = [TaskStatus.SUCCESS, TaskStatus.ERROR, TaskStatus.CANCELLED]

# -- update_pending -----------------------------------------------------------------


def test_update_a_pending_task(table: TaskTable) -> None:
    task = table.enqueue(ECHO, {"v": 1})
    when = datetime(2032, 1, 2, 3, 4, 5, tzinfo=UTC)
    changed = table.update(
        task.id,
        name="renamed",
        args={"v": 2},
        queue="later",
        priority=-3,
        run_at=when.isoformat(),
        max_attempts=5,
        timeout=9.0,
    )
    assert changed == table.get(task.id)
    assert (changed.name, changed.args, changed.queue, changed.priority) == (
        "renamed",
        {"v": 2},
        "later",
        -3,
    )
    assert (changed.run_at, changed.max_attempts, changed.timeout) == (when, 5, 9.0)
    assert changed.status is TaskStatus.PENDING


def test_save_writes_back_the_editable_fields(table: TaskTable) -> None:
    task = table.enqueue(ECHO, {"v": 1})
    saved = table.save(task.replace(name="saved", args=[1, 2], priority=4))
    assert (saved.name, saved.args, saved.priority) == ("saved", [1, 2], 4)
    assert table.get(task.id) == saved


def test_only_a_pending_task_can_be_changed(table: TaskTable) -> None:
    tasks = {status: make_status(table, status) for status in [TaskStatus.RUNNING, *FINAL]}
    before = snapshot(table)
    for status, task in tasks.items():
        with pytest.raises(InvalidTransition, match=f"is {status.value}; only a pending task"):
            table.update(task.id, priority=9)
        with pytest.raises(InvalidTransition):
            table.save(task.replace(name="nope"))
    assert snapshot(table) == before


def test_update_unknown_id(table: TaskTable) -> None:
    with pytest.raises(TaskNotFound):
        table.update(987654, priority=1)


BAD_CHANGES: list[dict[str, object]] = [
    {"status": "success"},
    {"attempts": 0},
    {"priority": 500},
    {"queue": "two words"},
    {"args": 7},
    {"name": ""},
    {"run_at": "whenever"},
    {"run_at": None},
    {"max_attempts": 0},
    {"priority": 1, "queue": "bad queue"},  # one bad field: the good one is not written
]


def test_bad_updates_change_nothing(table: TaskTable) -> None:
    task = table.enqueue(ECHO)
    before = snapshot(table)
    for changes in BAD_CHANGES:
        with pytest.raises(InvalidInput):
            table.update(task.id, **changes)
        assert snapshot(table) == before, changes


# -- delete ---------------------------------------------------------------------------


def test_delete_returns_the_ids_that_existed(table: TaskTable) -> None:
    a, b, c = (table.enqueue(ECHO).id for _ in range(3))
    assert table.delete(a, c, 999_999) == [a, c]
    assert [t.id for t in table.list().tasks] == [b]
    with pytest.raises(TaskNotFound):
        table.get(a)


def test_delete_nothing_deletes_nothing(table: TaskTable) -> None:
    table.enqueue(ECHO)
    assert table.delete() == []
    assert row_count(table) == 1


def test_delete_removes_the_tasks_files(table: TaskTable) -> None:
    keep = table.enqueue(ECHO, priority=-1)
    task = table.enqueue(ECHO)
    claimed = claim_one(table, register(table))
    assert table.storage.attach_file(claimed, "a.csv", "text/csv", b"a")
    assert table.storage.attach_file(claimed, "b.txt", "text/plain", b"b")
    finish(table, claimed, TaskStatus.SUCCESS)
    kept = claim_one(table, register(table))
    assert kept.id == keep.id
    assert table.storage.attach_file(kept, "keep.txt", "text/plain", b"k")
    assert file_rows(table) == 3
    assert table.delete(task.id) == [task.id]
    assert file_rows(table) == 1
    with pytest.raises(InvalidInput, match="no file"):
        table.read_file(task.id, "a.csv")
    assert table.read_file(keep.id, "keep.txt")[1] == b"k"


def test_a_deleted_running_task_cannot_be_finished(table: TaskTable) -> None:
    table.enqueue(ECHO)
    claimed = claim_one(table, register(table))
    table.delete(claimed.id)
    assert not table.storage.finish(claimed, Outcome(status=TaskStatus.SUCCESS, messages=()))
    assert row_count(table) == 0


# -- retry ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [TaskStatus.ERROR, TaskStatus.CANCELLED])
def test_retry_moves_error_and_cancelled_back_to_pending(
    table: TaskTable, status: TaskStatus
) -> None:
    task = make_status(table, status)
    assert table.retry(task.id) == [task.id]
    again = table.get(task.id)
    assert again.status is TaskStatus.PENDING
    assert again.finished_at is None and again.worker is None
    assert again.run_at <= table.storage.server_now()
    assert [t.id for t in table.storage.claim(register(table), (), 10)] == [task.id]


def test_retry_leaves_other_statuses_alone(table: TaskTable) -> None:
    statuses = [TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.SUCCESS]
    ids = [make_status(table, status).id for status in statuses]
    before = snapshot(table)
    assert table.retry(*ids) == []
    assert snapshot(table) == before


def test_retry_unknown_id(table: TaskTable) -> None:
    assert table.retry(555_555) == []


def test_retry_gives_one_more_attempt_when_all_were_used(table: TaskTable) -> None:
    task = make_status(table, TaskStatus.ERROR)
    assert (task.attempts, task.max_attempts) == (1, 1)
    table.retry(task.id)
    assert table.get(task.id).max_attempts == 2


def test_retry_keeps_max_attempts_when_some_are_left(table: TaskTable) -> None:
    task = make_status(table, TaskStatus.ERROR, max_attempts=3)
    table.retry(task.id)
    assert (table.get(task.id).attempts, table.get(task.id).max_attempts) == (1, 3)


def test_retry_skips_a_task_whose_unique_key_is_taken(table: TaskTable) -> None:
    old = make_status(table, TaskStatus.ERROR, unique_key="order-1")
    other = make_status(table, TaskStatus.ERROR)
    live = table.enqueue(ECHO, unique_key="order-1")
    assert table.retry(old.id, other.id) == [other.id]
    assert table.get(old.id).status is TaskStatus.ERROR
    assert table.get(live.id).status is TaskStatus.PENDING
    table.cancel(live.id)
    assert table.retry(old.id) == [old.id]
    assert table.enqueue(ECHO, unique_key="order-1").id == old.id


def test_retry_resets_the_lost_count(table: TaskTable) -> None:
    task = table.enqueue(ECHO)
    worker = register(table)
    claim_one(table, worker)
    table.storage.deregister_worker(worker)
    assert table.storage.rescue(dead_after=30, max_lost=1) == [task.id]
    assert column(table, task.id, "lost_count") == 1
    table.retry(task.id)
    assert column(table, task.id, "lost_count") == 0


# -- cancel ---------------------------------------------------------------------------


def test_cancel_a_pending_task(table: TaskTable) -> None:
    task = table.enqueue(ECHO)
    assert table.cancel(task.id) == ([task.id], [])
    cancelled = table.get(task.id)
    assert cancelled.status is TaskStatus.CANCELLED
    assert cancelled.finished_at is not None
    assert table.storage.claim(register(table), (), 10) == []


def test_cancel_a_task_waiting_for_its_retry(table: TaskTable) -> None:
    task = table.enqueue(ECHO, delay="1h")
    assert table.cancel(task.id) == ([task.id], [])


def test_cancel_a_running_task_asks_it_to_stop(table: TaskTable) -> None:
    task = make_status(table, TaskStatus.RUNNING)
    assert table.cancel(task.id) == ([], [task.id])
    running = table.get(task.id)
    assert running.status is TaskStatus.RUNNING
    assert running.cancel_requested
    assert table.cancel(task.id) == ([], [task.id])  # asking twice is fine


def test_cancel_leaves_finished_tasks_alone(table: TaskTable) -> None:
    ids = [make_status(table, status).id for status in FINAL]
    before = snapshot(table)
    assert table.cancel(*ids) == ([], [])
    assert snapshot(table) == before


def test_cancel_many(table: TaskTable) -> None:
    running = make_status(table, TaskStatus.RUNNING)
    pending = [table.enqueue(ECHO).id for _ in range(3)]
    done = make_status(table, TaskStatus.SUCCESS)
    assert table.cancel(running.id, *pending, done.id, 777_777) == (pending, [running.id])


# -- clean ----------------------------------------------------------------------------


def test_clean_deletes_only_finished_tasks_older_than_the_threshold(table: TaskTable) -> None:
    old = {s: make_status(table, s).id for s in FINAL}
    young = {s: make_status(table, s).id for s in FINAL}
    pending = table.enqueue(ECHO).id
    running = make_status(table, TaskStatus.RUNNING).id
    shift(table, list(old.values()), finished_at=31 * DAY)
    shift(table, list(young.values()), finished_at=29 * DAY)
    # never pending or running, even with an old finished_at (left by a retry, say)
    shift(table, [pending, running], finished_at=400 * DAY, created_at=400 * DAY)
    assert table.count_cleanable() == 3
    assert table.clean() == 3
    left = {t.id for t in table.list(limit=100).tasks}
    assert left == {*young.values(), pending, running}
    assert table.clean() == 0


def test_clean_by_status_and_age(table: TaskTable) -> None:
    error = make_status(table, TaskStatus.ERROR).id
    success = make_status(table, TaskStatus.SUCCESS).id
    shift(table, [error, success], finished_at=2 * 3600)
    assert table.clean("3h") == 0
    assert table.count_cleanable("1h", statuses=["error"]) == 1
    assert table.clean("1h", statuses=["error"]) == 1
    assert [t.id for t in table.list().tasks] == [success]
    assert table.clean(3600.0) == 1


def test_clean_refuses_live_or_unknown_statuses(table: TaskTable) -> None:
    task = make_status(table, TaskStatus.SUCCESS)
    shift(table, task.id, finished_at=100 * DAY)
    for statuses in (["pending"], ["running"], ["done"], ["success", "running"]):
        with pytest.raises(InvalidInput):
            table.clean(statuses=statuses)
        with pytest.raises(InvalidInput):
            table.count_cleanable(statuses=statuses)
    assert row_count(table) == 1


def test_clean_refuses_a_bad_duration(table: TaskTable) -> None:
    with pytest.raises(InvalidInput, match="30x"):
        table.clean("30x")


def test_clean_works_in_batches(table: TaskTable) -> None:
    tasks = table.enqueue_many([{"handler": ECHO, "args": {"n": n}} for n in range(25)])
    ids = [t.id for t in tasks]
    table.cancel(*ids)
    shift(table, ids, finished_at=40 * DAY)
    batches: list[int] = []
    assert table.clean(batch_size=10, progress=batches.append) == 25
    assert batches == [10, 10, 5]
    assert row_count(table) == 0


def test_one_clean_batch_is_bounded(table: TaskTable) -> None:
    ids = [t.id for t in table.enqueue_many([{"handler": ECHO}] * 7)]
    table.cancel(*ids)
    shift(table, ids, finished_at=40 * DAY)
    removed = table.storage.clean(30 * DAY, [TaskStatus.CANCELLED], batch_size=3)
    assert removed == ids[:3]
    assert row_count(table) == 4


def test_clean_removes_files_too(table: TaskTable) -> None:
    table.enqueue(ECHO)
    claimed = claim_one(table, register(table))
    assert table.storage.attach_file(claimed, "r.csv", "text/csv", b"1,2\n")
    finish(table, claimed, TaskStatus.SUCCESS)
    shift(table, claimed.id, finished_at=31 * DAY)
    assert table.clean() == 1
    assert file_rows(table) == 0


def test_clean_uses_the_configured_retention(db_url: str, settings: Settings) -> None:
    with TaskTable(db_url, settings=settings.replace(retention=timedelta(days=2))) as table:
        table.migrate()
        task = make_status(table, TaskStatus.SUCCESS)
        shift(table, task.id, finished_at=3 * DAY)
        assert table.clean() == 1


# -- stats ----------------------------------------------------------------------------


def test_stats_on_an_empty_table(table: TaskTable) -> None:
    stats = table.stats()
    assert stats.total == 0
    assert stats.by_status == {s.value: 0 for s in TaskStatus}
    assert stats.by_queue == {}
    assert stats.oldest_pending_age is None
    assert (stats.finished_last_minute, stats.finished_last_hour) == (0, 0)


def test_stats_counts(table: TaskTable) -> None:
    for _ in range(3):
        table.enqueue(ECHO)
    table.enqueue(ECHO, queue="emails")
    table.enqueue(ECHO, delay="1h")  # not due: not in the oldest-pending age
    success = make_status(table, TaskStatus.SUCCESS)
    make_status(table, TaskStatus.ERROR, queue="emails")
    make_status(table, TaskStatus.CANCELLED)
    make_status(table, TaskStatus.RUNNING)
    oldest = table.list(status="pending", sort="id", limit=1).tasks[0]
    shift(table, oldest.id, run_at=120)
    shift(table, success.id, finished_at=30 * 60)
    worker = register(table, "stats-worker")

    stats = table.stats()
    assert stats.by_status == {
        "pending": 5,
        "running": 1,
        "success": 1,
        "error": 1,
        "cancelled": 1,
    }
    assert stats.total == 9
    assert stats.by_queue["emails"] == {
        "pending": 1,
        "running": 0,
        "success": 0,
        "error": 1,
        "cancelled": 0,
    }
    assert stats.by_queue["default"]["pending"] == 4
    assert stats.oldest_pending_age is not None
    assert 120 <= stats.oldest_pending_age < 180
    assert stats.finished_last_minute == 1  # the error; the success is 30 minutes old
    assert stats.finished_last_hour == 2
    assert worker in [w.id for w in stats.workers]
    data = stats.to_json()
    assert data["total"] == 9 and data["by_status"]["pending"] == 5
