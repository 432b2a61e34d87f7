"""The operations layer in process, on each database: what both the API and the
dashboard rely on beyond what the HTTP tests show."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import update

from tasktable import TaskTable
from tasktable.core.handlers import Allowlist
from tasktable.errors import HandlerNotAllowed, InvalidInput
from tasktable.ops import BULK_LIMIT, Operations, TaskQuery
from tasktable.storage.base import WorkerInfo
from tasktable.storage.schema import task_table, worker_table
from tasktable.storage.types import utcnow

from .conftest import ECHO


def test_workers_alive_by_their_heartbeat(table: TaskTable) -> None:
    for name in ("fresh", "stale"):
        table.storage.register_worker(
            WorkerInfo(id=name, hostname="h", pid=1, slots=5, queues=("default",))
        )
    with table.storage.engine.begin() as conn:
        conn.execute(
            update(worker_table)
            .where(worker_table.c.id == "stale")
            .values(heartbeat_at=utcnow(-3600))
        )
    overview = Operations(table).stats()
    alive = {w.id: ok for w, ok in overview.workers}
    assert alive == {"fresh": True, "stale": False}
    assert overview.to_json()["workers_alive"] == 1


def test_throughput_buckets_are_zero_filled_and_ordered(table: TaskTable) -> None:
    ids = [table.enqueue(ECHO, {"i": i}, verify=False).id for i in range(3)]
    with table.storage.engine.begin() as conn:
        for task_id, age, status in (
            (ids[0], 30, "success"),
            (ids[1], 150, "error"),
            (ids[2], 7200, "success"),
        ):
            conn.execute(
                update(task_table)
                .where(task_table.c.id == task_id)
                .values(status=status, finished_at=utcnow(-age))
            )
    overview = Operations(table).stats(bucket_seconds=60, buckets=10)
    starts = [start for start, _, _ in overview.throughput]
    assert len(starts) == 10 and starts == sorted(starts)
    assert all((b - a).total_seconds() == 60 for a, b in itertools.pairwise(starts))
    assert sum(ok for _, ok, _ in overview.throughput) == 1  # the 2-hour-old one is outside
    assert sum(err for _, _, err in overview.throughput) == 1
    assert starts[-1] <= overview.now


def test_bulk_by_filter_is_bounded(table: TaskTable) -> None:
    ids = [table.enqueue(ECHO, {}, queue="many", verify=False).id for _ in range(5)]
    ops = Operations(table)
    first = ops.bulk("cancel", query=TaskQuery(queues=("many",)), limit=3)
    assert first.ids == ids[:3] and first.limit_reached
    second = ops.bulk("cancel", query=TaskQuery(queues=("many",), statuses=("pending",)), limit=3)
    assert second.ids == ids[3:] and not second.limit_reached
    with pytest.raises(InvalidInput):
        ops.bulk("delete", query=TaskQuery(), limit=BULK_LIMIT + 1)
    with pytest.raises(InvalidInput):
        ops.bulk("delete", ids=[1], query=TaskQuery())
    with pytest.raises(InvalidInput):
        ops.bulk("delete", ids=list(range(1, BULK_LIMIT + 2)))


def test_remote_enqueue_needs_the_allowlist_local_does_not(table: TaskTable) -> None:
    with pytest.raises(HandlerNotAllowed, match="TASKTABLE_HANDLERS"):
        Operations(table, remote=True).enqueue(ECHO)
    assert Operations(table, remote=False).enqueue(ECHO).handler == ECHO
    table.settings = table.settings.replace(handlers=Allowlist.parse("tests.support.handlers:*"))
    assert Operations(table, remote=True).enqueue(ECHO, {"x": 1}).args == {"x": 1}
    with pytest.raises(HandlerNotAllowed):
        Operations(table, remote=True).enqueue("tests.support.canary:Canary")


def test_patch_takes_only_the_four_fields(table: TaskTable) -> None:
    task = table.enqueue(ECHO, {}, verify=False)
    ops = Operations(table)
    with pytest.raises(InvalidInput, match="only name, priority, run_at, queue"):
        ops.patch(task.id, {"args": {"x": 1}})
    with pytest.raises(InvalidInput, match="Nothing to change"):
        ops.patch(task.id, {})
    assert ops.patch(task.id, {"priority": 7}).priority == 7
