"""Worker-side writes are fenced by the claim token; heartbeats, rescue and release."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from tasktable import TaskTable
from tasktable.core.status import TaskStatus
from tasktable.core.task import ActionLink, Message, Progress, Task
from tasktable.errors import InvalidTransition
from tasktable.settings import Settings
from tasktable.storage.base import Outcome

from .helpers import (
    ECHO,
    claim_all,
    claim_one,
    column,
    file_rows,
    register,
    shift,
    shift_worker,
    snapshot,
)

DEAD_AFTER = 30.0
SUCCESS = Outcome(status=TaskStatus.SUCCESS, messages=(Message(text="done"),))


def wrong_token(task: Task) -> Task:
    return task.replace(claim_token="0" * 32)


def try_every_write(table: TaskTable, task: Task) -> list[bool]:
    storage = table.storage
    return [
        storage.report(task, Progress(done=1, total=2), [Message(text="x")], None),
        storage.attach_file(task, "f.txt", "text/plain", b"data"),
        storage.release(task, Message(text="bye")),
        storage.finish(task, SUCCESS),
    ]


# -- fencing --------------------------------------------------------------------------


def test_writes_with_a_wrong_token_change_nothing(table: TaskTable) -> None:
    table.enqueue(ECHO)
    claimed = claim_one(table, register(table))
    before = snapshot(table)
    assert try_every_write(table, wrong_token(claimed)) == [False] * 4
    assert snapshot(table) == before


def test_writes_without_a_claim_are_refused(table: TaskTable) -> None:
    task = table.enqueue(ECHO)
    with pytest.raises(InvalidTransition, match="not claimed"):
        table.storage.finish(task, SUCCESS)


def test_writes_with_a_stale_token_change_nothing(table: TaskTable) -> None:
    table.enqueue(ECHO)
    worker = register(table)
    first = claim_one(table, worker)
    assert table.storage.release(first, Message(text="shutting down"))
    second = claim_one(table, worker)
    assert second.id == first.id and second.claim_token != first.claim_token
    before = snapshot(table)
    assert try_every_write(table, first) == [False] * 4
    assert snapshot(table) == before
    assert table.storage.finish(second, SUCCESS)


def test_writes_after_the_task_finished_change_nothing(table: TaskTable) -> None:
    table.enqueue(ECHO)
    claimed = claim_one(table, register(table))
    assert table.storage.finish(claimed, SUCCESS)
    before = snapshot(table)
    assert try_every_write(table, claimed) == [False] * 4
    assert snapshot(table) == before


def test_finish_after_rescue_is_refused(table: TaskTable) -> None:
    task = table.enqueue(ECHO)
    worker = register(table)
    claimed = claim_one(table, worker)
    shift_worker(table, worker, 2 * DEAD_AFTER)
    shift(table, task.id, heartbeat_at=2 * DEAD_AFTER)
    assert table.storage.rescue(DEAD_AFTER, max_lost=3) == [task.id]
    before = snapshot(table)
    assert not table.storage.finish(claimed, SUCCESS)
    assert snapshot(table) == before
    assert table.get(task.id).status is TaskStatus.PENDING


def test_report_saves_live_progress_messages_and_link(table: TaskTable) -> None:
    task = table.enqueue(ECHO)
    claimed = claim_one(table, register(table))
    link = ActionLink(text="Download CSV", route_path="reports/dl", route_params={"f": "a.csv"})
    messages = [Message(text="step 1"), Message(text="careful", level="warning")]
    assert table.storage.report(claimed, Progress(done=3, total=10), messages, link)
    live = table.get(task.id)
    assert live.progress == Progress(done=3, total=10)
    assert [(m.text, m.level) for m in live.messages] == [
        ("step 1", "info"),
        ("careful", "warning"),
    ]
    assert live.action_link == link
    assert live.status is TaskStatus.RUNNING


@pytest.mark.parametrize(
    ("status", "error"), [(TaskStatus.SUCCESS, None), (TaskStatus.ERROR, "Traceback...")]
)
def test_finish_saves_the_outcome(table: TaskTable, status: TaskStatus, error: str | None) -> None:
    task = table.enqueue(ECHO, unique_key="k")
    claimed = claim_one(table, register(table))
    outcome = Outcome(
        status=status,
        messages=(Message(text="Order statuses updated for complete orders.", level="success"),),
        error=error,
        progress=Progress(done=2, total=2),
        action_link=ActionLink(text="Open", route_path="x"),
    )
    assert table.storage.finish(claimed, outcome)
    done = table.get(task.id)
    assert done.status is status
    assert done.error == error
    assert [m.text for m in done.messages] == ["Order statuses updated for complete orders."]
    assert done.progress == Progress(done=2, total=2)
    assert done.action_link == ActionLink(text="Open", route_path="x")
    assert done.finished_at is not None and done.executed_at is not None
    assert done.finished_at >= done.executed_at
    assert done.claim_token is None
    assert column(table, task.id, "active_key") is None
    assert table.enqueue(ECHO, unique_key="k").id != task.id


def test_finish_many_writes_each_outcome_fenced_by_its_own_token(table: TaskTable) -> None:
    ids = [table.enqueue(ECHO, max_attempts=3, unique_key=f"k{i}").id for i in range(5)]
    worker = register(table)
    a, b, c, d, e = claim_all(table, worker)
    assert [t.id for t in (a, b, c, d, e)] == ids
    assert table.storage.release(c, Message(text="shutting down"))
    failed = Outcome(
        status=TaskStatus.ERROR,
        messages=(Message(text="boom", level="error"),),
        error="Traceback \x00",
        progress=Progress(done=1, total=4),
        action_link=ActionLink(text="Open", route_path="x"),
    )
    retry = Outcome(status=TaskStatus.PENDING, messages=(Message(text="again"),), error="e")
    results = table.storage.finish_many(
        [(a, SUCCESS), (b, failed), (c, SUCCESS), (d, retry), (wrong_token(e), SUCCESS)]
    )
    assert results == [True, True, False, True, False]
    done = [table.get(i) for i in ids]
    assert [t.status for t in done] == [
        TaskStatus.SUCCESS,
        TaskStatus.ERROR,
        TaskStatus.PENDING,
        TaskStatus.PENDING,
        TaskStatus.RUNNING,
    ]
    assert done[1].error == "Traceback \\x00" and done[1].progress == Progress(done=1, total=4)
    assert done[1].action_link == ActionLink(text="Open", route_path="x")
    assert [m.text for m in done[1].messages] == ["boom"]
    assert all(t.finished_at is not None and t.claim_token is None for t in done[:2])
    assert [column(table, i, "active_key") for i in ids] == [None, None, "k2", "k3", "k4"]
    assert done[3].run_at is not None and done[3].claim_token is None
    assert table.storage.finish_many([]) == []


def test_finish_and_claim_writes_outcomes_and_claims_in_one_step(table: TaskTable) -> None:
    first = [table.enqueue(ECHO, unique_key=f"k{i}").id for i in range(3)]
    worker = register(table)
    a, b, c = table.storage.claim(worker, (), 3, alive_within=DEAD_AFTER)
    later = [table.enqueue(ECHO, name=f"later {i}").id for i in range(4)]
    failed = Outcome(
        status=TaskStatus.ERROR,
        messages=(Message(text="boom", level="error"),),
        error="Traceback",
        progress=Progress(done=1, total=4),
        action_link=ActionLink(text="Open", route_path="x"),
    )
    oks, claimed = table.storage.finish_and_claim(
        [(a, SUCCESS), (b, failed), (wrong_token(c), SUCCESS)],
        worker,
        (),
        2,
        alive_within=DEAD_AFTER,
    )
    assert oks == [True, True, False]
    assert [t.id for t in claimed] == later[:2]
    assert all(t.status is TaskStatus.RUNNING and t.worker == worker for t in claimed)
    assert all(t.claim_token and t.attempts == 1 for t in claimed)
    done = [table.get(i) for i in first]
    assert [t.status for t in done] == [TaskStatus.SUCCESS, TaskStatus.ERROR, TaskStatus.RUNNING]
    assert done[1].progress == Progress(done=1, total=4) and done[1].error == "Traceback"
    assert done[1].action_link == ActionLink(text="Open", route_path="x")
    assert [m.text for m in done[1].messages] == ["boom"]
    assert all(t.finished_at is not None and t.claim_token is None for t in done[:2])
    assert [column(table, i, "active_key") for i in first] == [None, None, "k2"]
    # The claimed rows came back whole: what get() says.
    assert claimed[0] == table.get(claimed[0].id)


def test_a_batch_of_outcomes_keeps_every_character(table: TaskTable) -> None:
    ids = [table.enqueue(ECHO).id for _ in range(3)]
    worker = register(table)
    claimed = table.storage.claim(worker, (), 3, alive_within=DEAD_AFTER)
    text = 'héllo 🎉 "quoted" \\ back\nslash, NUL \x00 ?'
    outcome = Outcome(
        status=TaskStatus.ERROR,
        messages=(Message(text=text), Message(text="second", level="warning")),
        error="ünïcode " + "x" * 70_000,
        progress=Progress(done=3, total=None),
        action_link=ActionLink(text="Öffnen", route_path="a/b", route_params={"k": "v ü"}),
    )
    assert table.storage.finish_many([(t, outcome) for t in claimed]) == [True] * 3
    for task_id in ids:
        done = table.get(task_id)
        assert [m.text for m in done.messages] == [text, "second"]
        assert done.error is not None and done.error.startswith("ünïcode x")
        assert len(done.error) == len("ünïcode ") + 70_000
        assert done.progress == Progress(done=3, total=None)
        assert done.action_link == outcome.action_link


def test_finish_and_claim_without_room_or_outcomes(table: TaskTable) -> None:
    ids = [table.enqueue(ECHO).id for _ in range(3)]
    worker = register(table)
    [a] = table.storage.claim(worker, (), 1, alive_within=DEAD_AFTER)
    assert table.storage.finish_and_claim([(a, SUCCESS)], worker, (), 0) == ([True], [])
    assert table.get(ids[1]).status is TaskStatus.PENDING
    oks, claimed = table.storage.finish_and_claim([], worker, (), 5, alive_within=DEAD_AFTER)
    assert oks == [] and [t.id for t in claimed] == ids[1:]


def test_finish_and_claim_with_a_retry_and_a_queue(table: TaskTable) -> None:
    worker = register(table)
    task = table.enqueue(ECHO, max_attempts=3)
    [claimed] = table.storage.claim(worker, (), 1, alive_within=DEAD_AFTER)
    other = table.enqueue(ECHO, queue="other")
    mine = table.enqueue(ECHO, queue="mine")
    retry = Outcome(status=TaskStatus.PENDING, messages=(Message(text="again"),), error="e")
    oks, got = table.storage.finish_and_claim(
        [(claimed, retry)], worker, ("mine",), 5, alive_within=DEAD_AFTER
    )
    assert oks == [True] and [t.id for t in got] == [mine.id]
    assert table.get(task.id).status is TaskStatus.PENDING
    assert table.get(other.id).status is TaskStatus.PENDING


def test_finish_and_claim_of_final_outcomes_claims_from_the_queues_asked(
    table: TaskTable,
) -> None:
    worker = register(table)
    table.enqueue(ECHO, queue="mine")
    [claimed] = table.storage.claim(worker, ("mine",), 1, alive_within=DEAD_AFTER)
    other = table.enqueue(ECHO, queue="other")
    mine = [table.enqueue(ECHO, queue=q, priority=p) for q, p in (("mine", 0), ("b", 5))]
    oks, got = table.storage.finish_and_claim(
        [(claimed, SUCCESS)], worker, ("mine", "b"), 5, alive_within=DEAD_AFTER
    )
    assert oks == [True] and [t.id for t in got] == [mine[1].id, mine[0].id]  # priority first
    assert table.get(other.id).status is TaskStatus.PENDING
    assert got == [table.get(t.id) for t in got]


def test_finish_and_claim_claims_nothing_for_a_dead_worker_but_writes(table: TaskTable) -> None:
    worker = register(table)
    table.enqueue(ECHO)
    [task] = table.storage.claim(worker, (), 1, alive_within=DEAD_AFTER)
    waiting = table.enqueue(ECHO)
    shift_worker(table, worker, 2 * DEAD_AFTER)  # its heartbeat is old
    oks, got = table.storage.finish_and_claim(
        [(task, SUCCESS)], worker, (), 5, alive_within=DEAD_AFTER
    )
    assert oks == [True] and got == []
    assert table.get(waiting.id).status is TaskStatus.PENDING


def test_finish_and_claim_refuses_an_unclaimed_task_and_writes_nothing(table: TaskTable) -> None:
    worker = register(table)
    table.enqueue(ECHO)
    [task] = table.storage.claim(worker, (), 1, alive_within=DEAD_AFTER)
    waiting = table.enqueue(ECHO)
    before = snapshot(table)
    with pytest.raises(InvalidTransition):
        table.storage.finish_and_claim(
            [(task, SUCCESS), (task.replace(claim_token=None), SUCCESS)], worker, (), 5
        )
    assert snapshot(table) == before
    assert table.get(waiting.id).status is TaskStatus.PENDING


def test_finish_as_a_retry_returns_to_pending_at_the_given_time(table: TaskTable) -> None:
    task = table.enqueue(ECHO, max_attempts=3, unique_key="k")
    worker = register(table)
    claimed = claim_one(table, worker)
    later = table.storage.server_now() + timedelta(minutes=5)
    outcome = Outcome(
        status=TaskStatus.PENDING, messages=(Message(text="retrying"),), error="boom", run_at=later
    )
    assert table.storage.finish(claimed, outcome)
    waiting = table.get(task.id)
    assert waiting.status is TaskStatus.PENDING
    assert waiting.run_at == later
    assert waiting.attempts == 1  # this attempt is charged
    assert waiting.error == "boom"
    assert waiting.worker is None and waiting.claim_token is None and waiting.finished_at is None
    assert table.storage.claim(worker, (), 5) == []
    assert table.enqueue(ECHO, unique_key="k").id == task.id  # still live
    shift(table, task.id, run_at=1)
    assert claim_one(table, worker).attempts == 2


# -- release --------------------------------------------------------------------------


def test_release_does_not_charge_the_attempt(table: TaskTable) -> None:
    task = table.enqueue(ECHO, unique_key="k")
    worker = register(table)
    claimed = claim_one(table, worker)
    assert claimed.attempts == 1
    assert table.storage.report(claimed, Progress(done=1), [Message(text="half way")], None)
    live = claimed.replace(messages=table.get(task.id).messages)
    assert table.storage.release(live, Message(text="worker shutting down", level="warning"))
    released = table.get(task.id)
    assert released.status is TaskStatus.PENDING
    assert released.attempts == 0
    assert [m.text for m in released.messages] == ["half way", "worker shutting down"]
    assert released.worker is None and released.claim_token is None
    assert released.heartbeat_at is None and released.finished_at is None
    assert released.run_at <= table.storage.server_now()
    assert table.enqueue(ECHO, unique_key="k").id == task.id  # still live
    again = claim_one(table, worker)
    assert (again.id, again.attempts) == (task.id, 1)


# -- heartbeat ------------------------------------------------------------------------


def test_heartbeat_stamps_the_worker_and_its_running_tasks(table: TaskTable) -> None:
    mine = table.enqueue(ECHO).id
    theirs = table.enqueue(ECHO).id
    me, other = register(table), register(table)
    assert claim_one(table, me).id == mine
    assert claim_one(table, other).id == theirs
    shift(table, [mine, theirs], heartbeat_at=120)
    assert table.storage.heartbeat(me)
    now = table.storage.server_now()
    mine_beat = table.get(mine).heartbeat_at
    theirs_beat = table.get(theirs).heartbeat_at
    assert mine_beat is not None and theirs_beat is not None
    assert now - mine_beat < timedelta(seconds=10)
    assert now - theirs_beat > timedelta(seconds=100)


def test_heartbeat_is_false_once_the_worker_row_is_gone(table: TaskTable) -> None:
    worker = register(table)
    assert table.storage.heartbeat(worker)
    assert table.storage.heartbeat(worker)  # twice in a row: still alive
    table.storage.deregister_worker(worker)
    assert not table.storage.heartbeat(worker)
    assert not table.storage.heartbeat("never-registered")


def test_a_worker_declared_dead_by_the_rescuer_gets_false(table: TaskTable) -> None:
    worker = register(table)
    shift_worker(table, worker, 2 * DEAD_AFTER)
    table.storage.rescue(DEAD_AFTER, max_lost=3)
    assert not table.storage.heartbeat(worker)


# -- rescue ---------------------------------------------------------------------------


def test_rescue_moves_only_tasks_whose_heartbeat_is_stale(table: TaskTable) -> None:
    ids = [t.id for t in table.enqueue_many([{"handler": ECHO}] * 4)]
    alive, dead = register(table, "alive"), register(table, "dead")
    fresh = [t.id for t in table.storage.claim(alive, (), 2)]
    stale = [t.id for t in table.storage.claim(dead, (), 2)]
    assert fresh + stale == ids
    shift(table, fresh, heartbeat_at=DEAD_AFTER - 10)  # inside the deadline
    shift(table, stale, heartbeat_at=DEAD_AFTER + 10)  # past it
    shift_worker(table, alive, DEAD_AFTER - 10)
    shift_worker(table, dead, DEAD_AFTER + 10)

    assert sorted(table.storage.rescue(DEAD_AFTER, max_lost=3)) == stale
    for task_id in stale:
        task = table.get(task_id)
        assert task.status is TaskStatus.PENDING
        assert task.worker is None and task.claim_token is None and task.heartbeat_at is None
        assert column(table, task_id, "lost_count") == 1
        assert task.messages[-1].level == "warning"
        assert "dead" in task.messages[-1].text and "lost" in task.messages[-1].text
    for task_id in fresh:
        assert table.get(task_id).status is TaskStatus.RUNNING
        assert column(table, task_id, "lost_count") == 0
    assert table.storage.heartbeat(alive)
    assert not table.storage.heartbeat(dead)
    assert table.storage.rescue(DEAD_AFTER, max_lost=3) == []


def test_rescue_moves_tasks_whose_worker_row_is_gone(table: TaskTable) -> None:
    task = table.enqueue(ECHO)
    worker = register(table)
    claim_one(table, worker)
    table.storage.deregister_worker(worker)
    assert table.storage.rescue(DEAD_AFTER, max_lost=3) == [task.id]


def test_rescued_tasks_run_again(table: TaskTable) -> None:
    task = table.enqueue(ECHO)
    worker = register(table)
    claim_one(table, worker)
    table.storage.deregister_worker(worker)
    table.storage.rescue(DEAD_AFTER, max_lost=3)
    again = claim_one(table, register(table))
    assert (again.id, again.attempts) == (task.id, 2)


def test_after_max_lost_the_task_ends_error(table: TaskTable) -> None:
    task = table.enqueue(ECHO, unique_key="k")
    for lost in (1, 2, 3):
        worker = register(table)
        assert claim_one(table, worker).id == task.id
        table.storage.deregister_worker(worker)
        assert table.storage.rescue(DEAD_AFTER, max_lost=3) == [task.id]
        assert column(table, task.id, "lost_count") == lost
    ended = table.get(task.id)
    assert ended.status is TaskStatus.ERROR
    assert ended.error == "worker lost 3 times"
    assert ended.finished_at is not None
    assert ended.messages[-1].level == "error"
    assert "3" in ended.messages[-1].text
    assert [m.level for m in ended.messages] == ["warning", "warning", "error"]
    assert table.enqueue(ECHO, unique_key="k").id != task.id  # the key is free again


def test_two_rescuers_in_parallel_act_once(db_url: str, settings: Settings) -> None:
    with TaskTable(db_url, settings=settings) as setup:
        setup.migrate()
        ids = [t.id for t in setup.enqueue_many([{"handler": ECHO}] * 20)]
        worker = register(setup)
        assert len(setup.storage.claim(worker, (), 20)) == 20
        shift_worker(setup, worker, 2 * DEAD_AFTER)
        shift(setup, ids, heartbeat_at=2 * DEAD_AFTER)
    barrier = threading.Barrier(2)
    results: dict[int, list[int]] = {}
    errors: list[BaseException] = []

    def rescuer(index: int) -> None:
        try:
            with TaskTable(db_url, settings=settings) as table:
                table.storage.check_schema()
                barrier.wait(timeout=30)
                results[index] = table.storage.rescue(DEAD_AFTER, max_lost=3)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=rescuer, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert not set(results[0]) & set(results[1])
    assert sorted(results[0] + results[1]) == ids
    with TaskTable(db_url, settings=settings) as check:
        for task_id in ids:
            assert column(check, task_id, "lost_count") == 1
            assert len(check.get(task_id).messages) == 1
        assert check.count(status="pending") == 20


def test_rescue_leaves_pending_and_finished_tasks_alone(table: TaskTable) -> None:
    from .helpers import make_status

    for status in (TaskStatus.PENDING, TaskStatus.SUCCESS, TaskStatus.ERROR):
        task = make_status(table, status)
        shift(table, task.id, heartbeat_at=10 * DEAD_AFTER)
    before = snapshot(table)
    assert table.storage.rescue(DEAD_AFTER, max_lost=3) == []
    assert snapshot(table) == before
    assert file_rows(table) == 0


# -- a cancel request wins over running again ----------------------------------------


def requested(table: TaskTable) -> Task:
    """A running task someone asked to cancel (the worker has not noticed yet)."""
    table.enqueue(ECHO, unique_key="cancel-me")
    worker = register(table)
    claimed = claim_one(table, worker)
    assert table.cancel(claimed.id) == ([], [claimed.id])
    return claimed


def assert_cancelled_for_good(table: TaskTable, task_id: int) -> None:
    task = table.get(task_id)
    assert task.status is TaskStatus.CANCELLED
    assert task.finished_at is not None and task.claim_token is None
    assert table.storage.claim(register(table), (), 10) == []
    assert table.enqueue(ECHO, unique_key="cancel-me").id != task_id  # the key is free


def test_a_release_does_not_undo_a_cancel_request(table: TaskTable) -> None:
    claimed = requested(table)
    assert table.storage.release(claimed, Message(text="worker shutting down"))
    assert_cancelled_for_good(table, claimed.id)
    assert table.get(claimed.id).messages[0].text == "worker shutting down"


def test_a_retry_outcome_does_not_undo_a_cancel_request(table: TaskTable) -> None:
    claimed = requested(table)
    retry = Outcome(status=TaskStatus.PENDING, messages=(Message(text="again"),), error="boom")
    assert table.storage.finish(claimed, retry)
    assert_cancelled_for_good(table, claimed.id)


def test_a_rescue_does_not_undo_a_cancel_request(table: TaskTable) -> None:
    claimed = requested(table)
    assert claimed.worker is not None
    table.storage.deregister_worker(claimed.worker)
    assert table.storage.rescue(DEAD_AFTER, max_lost=3) == [claimed.id]
    assert_cancelled_for_good(table, claimed.id)


def test_an_error_text_with_a_nul_character_is_saved(table: TaskTable) -> None:
    task = table.enqueue(ECHO)
    claimed = claim_one(table, register(table))
    outcome = Outcome(
        status=TaskStatus.ERROR,
        messages=(Message(text="bad bytes: a\x00b", level="error"),),
        error="ValueError: bad bytes b'a\x00b'",
    )
    assert table.storage.finish(claimed, outcome)
    ended = table.get(task.id)
    assert ended.status is TaskStatus.ERROR
    assert ended.error is not None and ended.error.startswith("ValueError: bad bytes b'a")
    assert "\x00" not in ended.error
    assert ended.messages[0].text == "bad bytes: a\x00b"  # JSON keeps it, escaped
