"""Enqueue, unique keys and get: the same behaviour on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from tasktable import TaskTable
from tasktable.core.status import TaskStatus
from tasktable.core.task import NewTask
from tasktable.errors import (
    DatabaseError,
    HandlerError,
    HandlerNotAllowed,
    InvalidInput,
    TaskNotFound,
)
from tasktable.settings import Settings
from tasktable.storage.engine import PING_AFTER_IDLE

from .helpers import ECHO, claim_one, finish, make_status, register, row_count
from .test_engine import kill_other_connections


def test_enqueue_one_stores_the_seeds_columns(table: TaskTable) -> None:
    task = table.enqueue(ECHO, ["357028"], name="50 - Shipping Email Sent")
    assert task.id > 0
    assert task.name == "50 - Shipping Email Sent"
    assert task.handler == ECHO
    assert task.args == ["357028"]
    assert task.status is TaskStatus.PENDING
    assert task.messages == ()
    assert task.executed_at is None and task.finished_at is None
    assert task.action_link is None
    assert task.created_at.tzinfo is not None
    assert abs(task.created_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert task.run_at == task.created_at  # due now, by the database clock
    assert (task.queue, task.priority, task.attempts, task.max_attempts) == ("default", 0, 0, 1)
    assert table.get(task.id) == task


def test_enqueue_defaults_the_name_to_the_handlers_task_name(table: TaskTable) -> None:
    assert table.enqueue(ECHO).name == "Echo"
    assert table.enqueue(ECHO).args == {}


def test_enqueue_options_are_stored(table: TaskTable) -> None:
    when = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    task = table.enqueue(
        "tests.support.handlers.Echo",
        {"order_ids": [1, 2], "note": "Zoë ✓"},
        queue="emails",
        priority=7,
        run_at=when,
        max_attempts=4,
        timeout=2.5,
        unique_key="order-1",
    )
    stored = table.get(task.id)
    assert stored.handler == ECHO  # the dotted spelling is stored in the colon form
    assert stored.args == {"order_ids": [1, 2], "note": "Zoë ✓"}
    assert (stored.queue, stored.priority, stored.max_attempts) == ("emails", 7, 4)
    assert stored.run_at == when
    assert stored.timeout == 2.5
    assert stored.unique_key == "order-1"


def test_delay_is_counted_from_now(table: TaskTable) -> None:
    task = table.enqueue(ECHO, delay="1h")
    assert timedelta(minutes=59) < task.run_at - task.created_at < timedelta(minutes=61)


def test_ids_increase(table: TaskTable) -> None:
    ids = [table.enqueue(ECHO).id for _ in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5


def test_ids_keep_increasing_after_the_newest_task_is_deleted(table: TaskTable) -> None:
    first = table.enqueue(ECHO).id
    second = table.enqueue(ECHO).id
    table.delete(second)
    assert table.enqueue(ECHO).id > second > first


def test_enqueue_many_keeps_order_and_ids_increase(table: TaskTable) -> None:
    items = [{"handler": ECHO, "args": {"n": n}, "priority": n % 3} for n in range(30)]
    tasks = table.enqueue_many(items)
    assert [t.args["n"] for t in tasks] == list(range(30))
    ids = [t.id for t in tasks]
    assert ids == sorted(ids) and len(set(ids)) == 30
    assert row_count(table) == 30


def test_enqueue_many_with_unique_keys_in_the_middle_keeps_id_order(table: TaskTable) -> None:
    items = [
        {"handler": ECHO, "args": {"n": 0}},
        {"handler": ECHO, "args": {"n": 1}, "unique_key": "k1"},
        {"handler": ECHO, "args": {"n": 2}},
        {"handler": ECHO, "args": {"n": 3}, "unique_key": "k3"},
        {"handler": ECHO, "args": {"n": 4}},
    ]
    tasks = table.enqueue_many(items)
    assert [t.args["n"] for t in tasks] == [0, 1, 2, 3, 4]
    ids = [t.id for t in tasks]
    assert ids == sorted(ids), "tasks enqueued together must run in the order given"


def test_enqueue_many_of_nothing(table: TaskTable) -> None:
    assert table.enqueue_many([]) == []


BAD_ITEMS: list[tuple[dict[str, object], type[Exception]]] = [
    ({"handler": ECHO, "args": 5}, InvalidInput),
    ({"handler": ECHO, "args": "{not json"}, InvalidInput),
    ({"handler": ECHO, "priority": 1000}, InvalidInput),
    ({"handler": ECHO, "queue": "bad queue"}, InvalidInput),
    ({"handler": "tests.support.handlers:NotAHandler"}, HandlerError),
    ({"handler": "tests.support.nowhere:Job"}, HandlerError),
    ({"args": {}}, InvalidInput),
]


def test_enqueue_many_is_all_or_nothing(table: TaskTable) -> None:
    for bad, error in BAD_ITEMS:
        items = [{"handler": ECHO, "args": {"n": 1}}, {"handler": ECHO, "args": {"n": 2}}, bad]
        with pytest.raises(error):
            table.enqueue_many(items)
        assert row_count(table) == 0, bad


BAD_OPTIONS: list[dict[str, object]] = [
    {"args": [float("nan")]},
    {"args": {"x": "y" * 200}},  # over the 100-byte limit set below
    {"delay": "30x"},
    {"delay": "-5"},
    {"delay": "1s", "run_at": "2030-01-01T00:00:00Z"},
    {"run_at": "someday"},
    {"max_attempts": 0},
    {"unique_key": ""},
    {"timeout": -1},
    {"name": "nul\x00byte"},  # PostgreSQL text cannot hold NUL: refused everywhere
    {"unique_key": "k\x00"},
]


def test_bad_enqueue_writes_nothing(db_url: str, settings: Settings) -> None:
    with TaskTable(db_url, settings=settings.replace(max_args_bytes=100)) as table:
        table.migrate()
        for options in BAD_OPTIONS:
            with pytest.raises(InvalidInput):
                table.enqueue(ECHO, **options)
            assert row_count(table) == 0, options


def test_a_handler_outside_the_allowlist_is_refused_and_writes_nothing(
    db_url: str, settings: Settings
) -> None:
    from tasktable.core.handlers import Allowlist

    allow = Allowlist.parse("tests.support.handlers:Boom")
    with TaskTable(db_url, settings=settings.replace(handlers=allow)) as table:
        table.migrate()
        with pytest.raises(HandlerNotAllowed):
            table.enqueue(ECHO)
        with pytest.raises(HandlerNotAllowed):
            table.enqueue_many([{"handler": "tests.support.handlers:Boom"}, {"handler": ECHO}])
        assert row_count(table) == 0
        assert table.enqueue("tests.support.handlers:Boom").id > 0


def test_enqueue_inside_the_callers_transaction_rolls_back_with_it(table: TaskTable) -> None:
    class Abort(Exception):
        pass

    with pytest.raises(Abort), table.storage.engine.begin() as conn:
        table.enqueue(ECHO, connection=conn)
        table.enqueue(ECHO, connection=conn, unique_key="in-tx")
        raise Abort
    assert row_count(table) == 0
    with table.storage.engine.begin() as conn:
        kept = table.enqueue(ECHO, connection=conn)
    assert table.get(kept.id).status is TaskStatus.PENDING


# -- unique keys --------------------------------------------------------------------


def test_unique_key_returns_the_pending_task(table: TaskTable) -> None:
    first = table.enqueue(ECHO, {"v": 1}, unique_key="order-9")
    again = table.enqueue(ECHO, {"v": 2}, unique_key="order-9")
    assert again.id == first.id
    assert again.args == {"v": 1}
    assert row_count(table) == 1


def test_unique_key_returns_the_running_task(table: TaskTable) -> None:
    first = table.enqueue(ECHO, unique_key="order-9")
    claim_one(table, register(table))
    assert table.enqueue(ECHO, unique_key="order-9").id == first.id
    assert row_count(table) == 1


def test_unique_key_is_free_again_once_the_task_finished(table: TaskTable) -> None:
    for status in (TaskStatus.SUCCESS, TaskStatus.ERROR, TaskStatus.CANCELLED):
        key = f"order-{status.value}"
        old = make_status(table, status, unique_key=key)
        new = table.enqueue(ECHO, unique_key=key)
        assert new.id != old.id, status
        assert table.enqueue(ECHO, unique_key=key).id == new.id, status
    assert row_count(table) == 6


def test_different_unique_keys_do_not_collide(table: TaskTable) -> None:
    a = table.enqueue(ECHO, unique_key="a")
    b = table.enqueue(ECHO, unique_key="b")
    c = table.enqueue(ECHO)
    d = table.enqueue(ECHO)
    assert len({a.id, b.id, c.id, d.id}) == 4


def test_unique_key_twice_in_one_batch_is_one_task(table: TaskTable) -> None:
    tasks = table.enqueue_many(
        [
            {"handler": ECHO, "args": {"n": 1}, "unique_key": "k"},
            {"handler": ECHO, "args": {"n": 2}, "unique_key": "k"},
        ]
    )
    assert tasks[0].id == tasks[1].id
    assert row_count(table) == 1


def test_concurrent_enqueues_with_one_key_make_one_row(db_url: str, settings: Settings) -> None:
    threads_count = 6
    with TaskTable(db_url, settings=settings) as setup:
        setup.migrate()
    barrier = threading.Barrier(threads_count)
    ids: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def enqueue() -> None:
        try:
            with TaskTable(db_url, settings=settings) as mine:
                mine.storage.check_schema()  # connect before the race
                barrier.wait(timeout=30)
                task = mine.enqueue(ECHO, unique_key="the-one")
            with lock:
                ids.append(task.id)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=enqueue) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len(ids) == threads_count and len(set(ids)) == 1
    with TaskTable(db_url, settings=settings) as check:
        assert check.count() == 1


# -- get ------------------------------------------------------------------------------


def test_get_unknown_id(table: TaskTable) -> None:
    with pytest.raises(TaskNotFound, match="No task with id 424242"):
        table.get(424242)


def test_get_reads_a_finished_task(table: TaskTable) -> None:
    task = table.enqueue(ECHO)
    claimed = claim_one(table, register(table))
    finish(table, claimed, TaskStatus.SUCCESS)
    done = table.get(task.id)
    assert done.status is TaskStatus.SUCCESS
    assert [m.text for m in done.messages] == ["ended success"]
    assert done.executed_at is not None and done.finished_at is not None
    assert done.created_at <= done.executed_at <= done.finished_at
    assert done.claim_token is None


def test_a_prepared_task_is_checked_against_the_allowlist_too(
    db_url: str, settings: Settings
) -> None:
    from tasktable.core.handlers import Allowlist
    from tasktable.core.task import NewTask

    allow = Allowlist.parse("tests.support.handlers:Boom")
    with TaskTable(db_url, settings=settings.replace(handlers=allow)) as table:
        table.migrate()
        smuggled = NewTask(handler="os:system", args=["echo hi"], name="x")
        with pytest.raises(HandlerNotAllowed):
            table.enqueue_many([smuggled])
        assert row_count(table) == 0


def test_returned_tasks_equal_what_get_reads(table: TaskTable) -> None:
    later = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    items: list[dict[str, object]] = [
        {"handler": ECHO, "args": {"n": 1, "t": (1, "Zoë")}, "timeout": 0.1, "priority": -5},
        {"handler": ECHO, "args": [], "run_at": later, "queue": "q.2", "max_attempts": 3},
        {"handler": ECHO, "run_at": "2020-01-01T00:00:00", "rerun_on_loss": False},
        {"handler": ECHO, "unique_key": "same", "timeout": 1e-3},
        {"handler": ECHO, "name": "x" * 255, "timeout": 123456.789},
    ]
    for tasks in (
        table.enqueue_many(items),
        [table.enqueue(**item) for item in items],  # type: ignore[arg-type]
    ):
        assert [table.get(t.id) for t in tasks] == tasks
        assert tasks[0].args == {"n": 1, "t": [1, "Zoë"]}
        assert tasks[1].run_at == later
        assert tasks[2].run_at == datetime(2020, 1, 1, tzinfo=UTC)


def test_enqueue_many_over_several_statements_keeps_order(table: TaskTable) -> None:
    items = [{"handler": ECHO, "args": {"n": n}} for n in range(2_500)]
    tasks = table.enqueue_many(items)
    assert [t.args["n"] for t in tasks] == list(range(2_500))
    ids = [t.id for t in tasks]
    assert ids == sorted(ids) and len(set(ids)) == 2_500
    assert table.get(ids[1_234]) == tasks[1_234]


def test_enqueue_many_inside_the_callers_transaction_rolls_back_with_it(
    table: TaskTable,
) -> None:
    items = [{"handler": ECHO, "args": {"n": n}} for n in range(5)]
    with table.storage.engine.connect() as conn:
        table.enqueue_many(items, connection=conn)
        conn.rollback()
    assert row_count(table) == 0
    with table.storage.engine.connect() as conn:
        kept = table.enqueue_many(items, connection=conn)
        conn.commit()
    assert [table.get(t.id) for t in kept] == kept


def test_a_refused_insert_writes_nothing_and_leaves_the_pool_sound(table: TaskTable) -> None:
    """A NewTask is taken as it is: the database refuses what does not fit, as a
    DatabaseError; the connection goes back to the pool in its usual (transactional) mode."""
    if table.storage.dialect_name == "sqlite":
        pytest.skip("SQLite stores text of any length")
    good = table.prepare(ECHO)
    too_long = NewTask(handler=ECHO, args={}, name="x" * 300)
    for batch in ([too_long], [good, too_long, good]):
        with pytest.raises(DatabaseError, match="refused a statement"):
            table.storage.insert(batch)
        assert row_count(table) == 0
    with table.storage.engine.connect() as conn:  # the same pooled connection
        table.enqueue(ECHO, connection=conn)
        conn.rollback()
    assert row_count(table) == 0
    assert table.get(table.enqueue(ECHO).id).status is TaskStatus.PENDING


def test_enqueue_recovers_from_killed_connections(table: TaskTable) -> None:
    """A connection that sat in the pool PING_AFTER_IDLE seconds is pinged before use:
    one the server dropped meanwhile is replaced, and the enqueue goes through."""
    if table.storage.dialect_name == "sqlite":
        pytest.skip("no server connection to kill")
    with table.storage.engine.connect(), table.storage.engine.connect():
        pass  # two connections in the pool
    assert kill_other_connections(table) >= 1
    time.sleep(PING_AFTER_IDLE)
    assert table.get(table.enqueue(ECHO).id).status is TaskStatus.PENDING
    assert kill_other_connections(table) >= 1
    time.sleep(PING_AFTER_IDLE)
    tasks = table.enqueue_many([{"handler": ECHO}] * 3)
    assert [table.get(t.id) for t in tasks] == tasks


def test_a_connection_killed_right_after_use_fails_one_enqueue_cleanly(table: TaskTable) -> None:
    """Within PING_AFTER_IDLE of its last use a connection is lent without a ping: a kill
    in that second fails one enqueue with a DatabaseError (nothing written), and the
    pool is discarded, so the next enqueue goes through."""
    if table.storage.dialect_name == "sqlite":
        pytest.skip("no server connection to kill")
    with table.storage.engine.connect(), table.storage.engine.connect():
        pass  # two connections in the pool: one to use, one to kill it from
    table.enqueue(ECHO)
    assert kill_other_connections(table) >= 1
    outcomes = []
    for _ in range(2):
        try:
            outcomes.append(table.enqueue(ECHO, {"try": len(outcomes)}).id)
        except DatabaseError:
            outcomes.append(None)
    assert outcomes[-1] is not None and outcomes.count(None) <= 1
    assert row_count(table) == 1 + sum(1 for o in outcomes if o is not None)


def test_a_new_task_with_a_naive_run_at_is_taken_as_utc(table: TaskTable) -> None:
    naive = datetime(2031, 1, 2, 3, 4, 5, 6)
    for batch in (1, 3):
        tasks = table.storage.insert(
            [NewTask(handler=ECHO, args={}, name="n", run_at=naive)] * batch
        )
        assert {t.run_at for t in tasks} == {naive.replace(tzinfo=UTC)}
        assert [table.get(t.id) for t in tasks] == tasks


def test_concurrent_enqueues_from_several_engines_all_land(db_url: str, settings: Settings) -> None:
    """On SQLite an enqueue is one autocommitted statement: it waits for the write lock
    like BEGIN IMMEDIATE does, and never fails with 'database is locked'."""
    errors: list[BaseException] = []
    ids: list[int] = []
    with TaskTable(db_url, settings=settings) as first:
        first.migrate()
    barrier = threading.Barrier(4)

    def run() -> None:
        try:
            with TaskTable(db_url, settings=settings) as table:
                table.enqueue(ECHO)  # connected before the race
                barrier.wait(timeout=30)
                ids.extend(table.enqueue(ECHO, {"n": n}).id for n in range(50))
                ids.extend(t.id for t in table.enqueue_many([{"handler": ECHO}] * 5))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert len(set(ids)) == 4 * 55
    with TaskTable(db_url, settings=settings) as table:
        assert row_count(table) == 4 * 56
