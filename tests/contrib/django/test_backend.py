"""TaskTableBackend against the behaviours Django's documentation specifies for backends.

Each test runs on SQLite, PostgreSQL and MariaDB (a Django database and a TASKS
entry each); tasks run in a real worker subprocess, ``python -m tasktable.contrib.django``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

pytest.importorskip("django", reason="Django is not installed (pip install -e '.[dev]')")
pytest.importorskip(
    "tasktable.contrib.django._compat",
    reason="no Tasks framework: Django 6, or Django 4.2+ with django-tasks",
)

from django.db import transaction
from django.utils import timezone

from tasktable import TaskStatus
from tasktable.contrib.django import TaskTableBackend, get_table
from tasktable.contrib.django._compat import (
    FAILED,
    READY,
    SUCCESSFUL,
    InvalidTask,
    TaskResultDoesNotExist,
    task_backends,
    task_enqueued,
)
from tasktable.contrib.django.handler import HANDLER_PATH
from tests.contrib.django_project import tasks

from .conftest import Run

Worker = Callable[..., Run]


def on(alias: str, task: Any) -> Any:
    return task.using(backend=alias)


def test_declares_what_it_supports(alias: str) -> None:
    backend = task_backends[alias]
    assert isinstance(backend, TaskTableBackend)
    assert backend.supports_defer
    assert backend.supports_async_task
    assert backend.supports_get_result
    assert backend.supports_priority
    assert backend.joins_transactions


def test_enqueue_returns_a_ready_result_and_writes_a_row(alias: str) -> None:
    result = on(alias, tasks.echo).enqueue(1, (2, 3), when={"a": 1})
    assert result.status == READY
    assert isinstance(result.id, str) and result.id.isdigit()
    assert result.backend == alias
    assert result.args == [1, [2, 3]]  # through JSON: tuples become lists
    assert result.kwargs == {"when": {"a": 1}}
    assert result.enqueued_at is not None and result.enqueued_at.tzinfo is not None
    assert result.started_at is None and result.finished_at is None
    assert not result.is_finished and result.attempts == 0
    with pytest.raises(ValueError, match="not finished"):
        _ = result.return_value

    row = get_table(alias).get(int(result.id))
    assert row.handler == HANDLER_PATH
    assert row.name == "echo"
    assert (row.queue, row.priority) == ("emails", 10)
    assert row.args["task"] == "tests.contrib.django_project.tasks.echo"

    again = tasks.echo.get_result(result.id) if alias == "default" else None
    fetched = task_backends[alias].get_result(result.id)
    assert fetched.id == result.id and fetched.status == READY
    assert fetched.args == result.args and fetched.kwargs == result.kwargs
    assert fetched.task.func is tasks.echo.func
    assert again is None or again.id == result.id


def test_arguments_must_be_json(alias: str) -> None:
    table = get_table(alias)
    before = table.count()
    with pytest.raises(TypeError):
        on(alias, tasks.add).enqueue(datetime.now(UTC), 1)
    assert table.count() == before


def test_unknown_results_do_not_exist(alias: str) -> None:
    backend = task_backends[alias]
    for bad in ("999999", "abc", ""):
        with pytest.raises(TaskResultDoesNotExist):
            backend.get_result(bad)
    plain = get_table(alias).enqueue("tests.support.handlers:Echo", {"x": 1})
    with pytest.raises(TaskResultDoesNotExist):
        backend.get_result(str(plain.id))  # a tasktable task that is not a Django task


def test_get_result_of_another_task_is_a_mismatch(alias: str) -> None:
    from tasktable.contrib.django._compat import _exceptions

    result = on(alias, tasks.add).enqueue(1, 2)
    with pytest.raises(_exceptions.TaskResultMismatch):
        on(alias, tasks.echo).get_result(result.id)


def test_validation_follows_the_flags_and_queues(alias: str) -> None:
    with pytest.raises(InvalidTask, match="not valid"):
        tasks.add.using(backend=alias, queue_name="nowhere")
    with pytest.raises(InvalidTask, match="priority"):
        tasks.add.using(backend=alias, priority=101)
    with pytest.raises(InvalidTask, match="aware"):
        tasks.add.using(backend=alias, run_after=datetime(2030, 1, 1))


def test_the_worker_runs_tasks_and_results_report_them(alias: str, run_worker: Worker) -> None:
    ok = on(alias, tasks.add).enqueue(2, 3)
    echoed = on(alias, tasks.echo).enqueue("x", n=[1, 2])
    failed = on(alias, tasks.fail).enqueue("no stock")
    custom = on(alias, tasks.fail_custom).enqueue()
    bad_return = on(alias, tasks.unserializable).enqueue()
    run_worker(alias)

    ok.refresh()
    assert ok.status == SUCCESSFUL and ok.is_finished
    assert ok.return_value == 5
    assert ok.errors == []
    assert ok.attempts == 1 and len(ok.worker_ids) == 1
    assert ok.enqueued_at <= ok.started_at <= ok.finished_at
    assert ok.last_attempted_at == ok.started_at
    assert on(alias, tasks.echo).get_result(echoed.id).return_value == {
        "args": ["x"],
        "kwargs": {"n": [1, 2]},
    }

    failed.refresh()
    assert failed.status == FAILED and failed.is_finished
    with pytest.raises(ValueError, match="failed"):
        _ = failed.return_value
    [error] = failed.errors
    assert error.exception_class_path == "builtins.ValueError"
    assert error.exception_class is ValueError
    assert "no stock" in error.traceback and "Traceback" in error.traceback

    custom.refresh()
    assert custom.errors[0].exception_class is tasks.OrderError

    bad_return.refresh()
    assert bad_return.status == FAILED
    assert bad_return.errors[0].exception_class is TypeError


def test_async_functions_and_context(alias: str, run_worker: Worker) -> None:
    summed = on(alias, tasks.async_add).enqueue(20, 22)
    contextual = on(alias, tasks.with_context).enqueue("hello")
    run_worker(alias)
    summed.refresh()
    assert summed.return_value == 42
    contextual.refresh()
    assert contextual.return_value == {"label": "hello", "attempt": 1, "id": contextual.id}


def test_async_api(alias: str, run_worker: Worker) -> None:
    async def enqueue() -> Any:
        return await on(alias, tasks.add).aenqueue(4, 5)

    result = asyncio.run(enqueue())
    assert result.status == READY
    run_worker(alias)

    async def fetch() -> Any:
        fetched = await on(alias, tasks.add).aget_result(result.id)
        await result.arefresh()
        return fetched

    fetched = asyncio.run(fetch())
    assert fetched.return_value == 9
    assert result.status == SUCCESSFUL


def test_priority_orders_the_queue(alias: str, run_worker: Worker) -> None:
    low = on(alias, tasks.add).using(priority=-5).enqueue(0, 1)
    normal = on(alias, tasks.add).enqueue(0, 2)
    high = on(alias, tasks.add).using(priority=50).enqueue(0, 3)
    run_worker(alias, "--slots", "1")
    table = get_table(alias)
    started = {r.id: table.get(int(r.id)).executed_at for r in (low, normal, high)}
    assert started[high.id] < started[normal.id] < started[low.id]


def test_run_after_defers(alias: str, run_worker: Worker) -> None:
    later = on(alias, tasks.add).using(run_after=timezone.now() + timedelta(hours=1)).enqueue(1, 1)
    past = on(alias, tasks.add).using(run_after=timezone.now() - timedelta(seconds=1)).enqueue(2, 2)
    assert later.task.run_after is not None
    run_worker(alias)
    later.refresh()
    past.refresh()
    assert later.status == READY
    assert past.status == SUCCESSFUL
    row = get_table(alias).get(int(later.id))
    assert row.run_at > datetime.now(UTC) + timedelta(minutes=50)
    assert task_backends[alias].get_result(later.id).task.run_after == row.run_at


def test_queues_are_served_separately(alias: str, run_worker: Worker) -> None:
    default = on(alias, tasks.add).enqueue(1, 2)
    email = on(alias, tasks.echo).enqueue("mail")
    run_worker(alias, "--queue", "emails")
    default.refresh()
    email.refresh()
    assert default.status == READY
    assert email.status == SUCCESSFUL


def test_progress_and_messages_of_a_running_function(alias: str, run_worker: Worker) -> None:
    result = on(alias, tasks.report).enqueue(4)
    run_worker(alias)
    row = get_table(alias).get(int(result.id))
    assert row.status is TaskStatus.SUCCESS
    assert row.progress is not None and (row.progress.done, row.progress.total) == (4, 4)
    assert [m.text for m in row.messages] == ["task_started signal received", "Counted to 4."]
    assert [f.filename for f in row.files] == ["django-result.json"]


def test_enqueued_signal(alias: str) -> None:
    seen: list[Any] = []

    def receiver(sender: Any, task_result: Any, **kwargs: Any) -> None:
        seen.append((sender, task_result))

    task_enqueued.connect(receiver)
    try:
        result = on(alias, tasks.add).enqueue(1, 1)
    finally:
        task_enqueued.disconnect(receiver)
    assert seen == [(TaskTableBackend, result)]


def test_worker_refuses_task_functions_the_allowlist_does_not_name(
    alias: str, run_worker: Worker
) -> None:
    result = on(alias, tasks.add).enqueue(1, 1)
    run_worker(alias, extra_env={"TASKTABLE_HANDLERS": "tasktable.contrib.django.*"})
    result.refresh()
    assert result.status == FAILED
    assert "not allowed by TASKTABLE_HANDLERS" in result.errors[0].traceback


def test_plain_tasktable_worker_sets_django_up(alias: str, django_env: dict[str, str]) -> None:
    import subprocess
    import sys
    from pathlib import Path

    result = on(alias, tasks.add).enqueue(3, 4)
    url = task_backends[alias].worker_url
    done = subprocess.run(
        [str(Path(sys.executable).parent / "tasktable"), "--db", url, "worker", "--burst"],
        env=django_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result.refresh()
    assert result.return_value == 7


def test_transaction_rolled_back_leaves_no_task(alias: str, run_worker: Worker) -> None:
    table = get_table(alias)
    with transaction.atomic(using=alias):
        result = on(alias, tasks.add).enqueue(1, 2)
        assert task_backends[alias].get_result(result.id).status == READY
        transaction.set_rollback(True, using=alias)
    with pytest.raises(TaskResultDoesNotExist):
        task_backends[alias].get_result(result.id)
    assert table.count() == 0
    assert "nothing due" in run_worker(alias).stderr or table.count() == 0


def test_transaction_committed_reaches_the_worker_with_its_rows(
    alias: str, run_worker: Worker
) -> None:
    from tests.contrib.django_project.notes.models import Note

    with transaction.atomic(using=alias):
        Note.objects.using(alias).create(text="first")
        counted = on(alias, tasks.count_notes).enqueue(alias)
    run_worker(alias)
    counted.refresh()
    assert counted.return_value == 1  # the worker saw the note committed with the task


def test_tasktable_handlers_join_the_transaction_too(alias: str) -> None:
    table = get_table(alias)
    with transaction.atomic(using=alias):
        table.enqueue("tests.support.handlers:Echo", {"x": 1})
        transaction.set_rollback(True, using=alias)
    assert table.count() == 0
    table.enqueue("tests.support.handlers:Echo", {"x": 2})
    assert table.count() == 1


def test_thread_slots_run_django_tasks_too(alias: str, run_worker: Worker) -> None:
    from tests.contrib.django_project.notes.models import Note

    results = [on(alias, tasks.write_note).enqueue(alias, f"note {n}") for n in range(3)]
    run_worker(alias, "--mode", "thread")
    for result in results:
        result.refresh()
        assert result.status == SUCCESSFUL, result.errors
    assert Note.objects.using(alias).count() == 3


def test_unique_key_enqueues_join_the_transaction(alias: str) -> None:
    table = get_table(alias)
    first = table.enqueue("tests.support.handlers:Echo", {"x": 1}, unique_key="order-7")
    again = table.enqueue("tests.support.handlers:Echo", {"x": 2}, unique_key="order-7")
    assert again.id == first.id
    with transaction.atomic(using=alias):
        table.enqueue("tests.support.handlers:Echo", {}, unique_key="order-8")
        transaction.set_rollback(True, using=alias)
    assert table.count() == 1


def _session_id(alias: str) -> int:
    from django.db import connections

    query = "SELECT pg_backend_pid()" if alias == "pg" else "SELECT CONNECTION_ID()"
    with connections[alias].cursor() as cursor:
        cursor.execute(query)
        return int(cursor.fetchone()[0])


def _waits_for_a_lock(alias: str, session: int) -> bool:
    from django.db import connections

    if alias == "pg":
        query = "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'"
    else:
        query = (
            "SELECT count(*) FROM information_schema.innodb_trx"
            " WHERE trx_mysql_thread_id = %s AND trx_state = 'LOCK WAIT'"
        )
    with connections[alias].cursor() as cursor:
        cursor.execute(query, [session])
        return bool(cursor.fetchone()[0])


def test_unique_key_race_in_two_transactions_returns_the_winner(alias: str) -> None:
    """Two requests enqueue the same unique key: the second one's insert waits for the
    first transaction, then finds its task (READ COMMITTED: a fresh read after the wait)."""
    import threading
    import time

    from django.db import connections

    if alias == "default":
        pytest.skip("SQLite has one writer at a time: the second insert cannot start")
    table = get_table(alias)
    handler = "tests.support.handlers:Echo"
    won = threading.Event()
    release = threading.Event()
    got: dict[str, Any] = {}

    def winner() -> None:
        try:
            with transaction.atomic(using=alias):
                got["winner"] = table.enqueue(handler, {"n": 1}, unique_key="race").id
                won.set()
                release.wait(30)
        except BaseException as exc:
            got["winner"] = exc
        finally:
            won.set()
            connections.close_all()

    def second() -> None:
        try:
            got["session"] = _session_id(alias)
            with transaction.atomic(using=alias):
                got["second"] = table.enqueue(handler, {"n": 2}, unique_key="race").id
        except BaseException as exc:
            got["second"] = exc
        finally:
            connections.close_all()

    first_thread = threading.Thread(target=winner)
    first_thread.start()
    assert won.wait(30)
    second_thread = threading.Thread(target=second)
    second_thread.start()
    deadline = time.monotonic() + 30
    while not ("session" in got and _waits_for_a_lock(alias, got["session"])):
        assert time.monotonic() < deadline, "the second insert never waited for the first"
        assert second_thread.is_alive(), got
        time.sleep(0.2)  # InnoDB refreshes innodb_trx only when unread for 0.1 s
    release.set()
    first_thread.join(30)
    second_thread.join(30)
    assert isinstance(got["winner"], int), got
    assert got["second"] == got["winner"]
    assert table.count() == 1


def test_the_bridge_speaks_the_driver_of_the_django_connection(alias: str) -> None:
    from django.db import connections

    from tasktable.contrib.django.connection import bridge_engine

    driver = bridge_engine(alias).dialect.driver
    module = connections[alias].Database.__name__
    expected = {"sqlite3.dbapi2": "pysqlite", "MySQLdb": "mysqldb"}.get(module, module)
    assert driver == expected
