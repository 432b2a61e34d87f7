"""Every command of PRODUCT.md's CLI table, as a user types it, with and without --json."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import make_url, update

from tasktable import TaskTable
from tasktable.core.status import TaskStatus
from tasktable.core.task import Message
from tasktable.storage.base import Outcome
from tasktable.storage.schema import task_table
from tests.support.cli import ECHO, snapshot

from .conftest import Cli

#: The seed's columns, by their names: the --json output of a task keeps them.
SEED_COLUMNS = {
    "id",
    "name",
    "handler",
    "args",
    "status",
    "messages",
    "created_at",
    "executed_at",
    "finished_at",
    "action_link",
}
OURS = {"queue", "priority", "run_at", "attempts", "max_attempts", "error", "progress", "worker"}


def _finish(table: TaskTable, status: TaskStatus, *messages: str) -> int:
    """Enqueue an Echo task and end it with ``status`` as a worker would."""
    task = table.enqueue(ECHO, {})
    claimed = table.storage.claim("test-worker", ("default",), 1)
    assert [t.id for t in claimed] == [task.id]
    outcome = Outcome(status=status, messages=tuple(Message(text=m) for m in messages))
    assert table.storage.finish(claimed[0], outcome)
    return task.id


def _age(table: TaskTable, task_id: int, days: float) -> None:
    """Fabricate an old task: created and finished ``days`` ago."""
    when = datetime.now(UTC) - timedelta(days=days)
    with table.storage.engine.begin() as conn:
        conn.execute(
            update(task_table)
            .where(task_table.c.id == task_id)
            .values(created_at=when, finished_at=when)
        )


# -- migrate -------------------------------------------------------------------------
def test_migrate_creates_then_is_idempotent(cli: Cli, db_url: str) -> None:
    first = cli("migrate", "--db", db_url)
    assert first.code == 0, first.err
    assert first.out.startswith("Applied migration(s) 1")
    schema = snapshot(db_url)
    assert "tasktable_task" in schema

    again = cli("--db", db_url, "migrate", "--json")

    assert again.code == 0, again.err
    assert again.json()["applied"] == []
    assert snapshot(db_url) == schema
    assert "up to date" in cli("migrate", "--db", db_url).out


def test_migrate_json_hides_the_password(cli: Cli, postgresql_url: str) -> None:
    url = make_url(postgresql_url).set(password="s3cret")  # trust auth ignores it
    result = cli("migrate", "--json", "--db", url.render_as_string(hide_password=False))

    assert result.code == 0, result.err
    data = result.json()
    assert data["applied"][0] == 1
    assert data["database"] == url.render_as_string(hide_password=True)
    assert "s3cret" not in result.out


# -- enqueue -------------------------------------------------------------------------
def test_enqueue_prints_the_id(cli: Cli, url: str, table: TaskTable) -> None:
    result = cli("enqueue", ECHO, "--args", '{"order_ids": [1, 2]}', "--db", url)

    assert result.code == 0, result.err
    task = table.get(int(result.out.strip()))
    assert task.status is TaskStatus.PENDING
    assert task.args == {"order_ids": [1, 2]}
    assert task.name == "Echo"  # the handler's task name
    assert task.handler == ECHO


def test_enqueue_json_has_the_seed_columns(cli: Cli, url: str) -> None:
    result = cli("--db", url, "enqueue", ECHO, "--args", "[357028]", "--json")

    assert result.code == 0, result.err
    data = result.json()
    assert set(data) >= SEED_COLUMNS | OURS
    assert data["args"] == [357028]
    assert data["status"] == "pending"
    assert data["messages"] == []
    assert data["executed_at"] is None and data["finished_at"] is None
    assert data["action_link"] == {"text": None, "route_path": None, "route_params": None}
    datetime.fromisoformat(data["created_at"])


def test_enqueue_options(cli: Cli, url: str) -> None:
    result = cli(
        "enqueue",
        "tests.support.handlers.Echo",  # the dotted spelling is accepted too
        "--name",
        "90 - Delivered | Update Status",
        "--queue",
        "mass",
        "--priority",
        "10",
        "--delay",
        "10m",
        "--max-attempts",
        "3",
        "--timeout",
        "30s",
        "--unique-key",
        "orders-1-2",
        "--json",
        "--db",
        url,
    )

    assert result.code == 0, result.err
    data = result.json()
    assert data["handler"] == ECHO
    assert data["name"] == "90 - Delivered | Update Status"
    assert (data["queue"], data["priority"], data["max_attempts"]) == ("mass", 10, 3)
    assert data["timeout"] == 30.0
    assert data["unique_key"] == "orders-1-2"
    wait = datetime.fromisoformat(data["run_at"]) - datetime.fromisoformat(data["created_at"])
    assert timedelta(minutes=9) < wait <= timedelta(minutes=10, seconds=5)


def test_enqueue_run_at_and_function_handler(cli: Cli, url: str) -> None:
    result = cli(
        "enqueue",
        "tests.support.handlers:plain_function",
        "--run-at",
        "2030-01-31T14:00:00Z",
        "--json",
        "--db",
        url,
    )

    assert result.code == 0, result.err
    data = result.json()
    assert data["name"] == "Plain function"
    assert data["run_at"].startswith("2030-01-31T14:00:00")


def test_enqueue_unique_key_gives_the_live_task(cli: Cli, url: str) -> None:
    first = cli("enqueue", ECHO, "--unique-key", "k", "--db", url)
    second = cli("enqueue", ECHO, "--unique-key", "k", "--db", url)
    assert first.code == second.code == 0
    assert first.out == second.out


def test_enqueue_no_verify_does_not_import(
    cli: Cli, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "imported"
    monkeypatch.setenv("TASKTABLE_CANARY_MARKER", str(marker))
    monkeypatch.delitem(__import__("sys").modules, "tests.support.canary", raising=False)

    result = cli("enqueue", "tests.support.canary:Canary", "--no-verify", "--db", url)

    assert result.code == 0, result.err
    assert not marker.exists()


# -- --db, TASKTABLE_DATABASE_URL and the SQLite default ------------------------------
def test_database_from_the_environment(
    cli: Cli, url: str, table: TaskTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASKTABLE_DATABASE_URL", url)
    task_id = int(cli("enqueue", ECHO).out)
    assert table.get(task_id).handler == ECHO
    assert cli("show", str(task_id), "--json").json()["id"] == task_id


def test_db_option_beats_the_environment(
    cli: Cli, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = f"sqlite:///{tmp_path}/other.sqlite3"
    monkeypatch.setenv("TASKTABLE_DATABASE_URL", other)

    before_name = cli("--db", sqlite_url, "enqueue", ECHO)
    after_name = cli("enqueue", ECHO, "--db", sqlite_url)
    both = cli("--db", other, "enqueue", ECHO, "--db", sqlite_url)  # the later one wins

    assert [r.code for r in (before_name, after_name, both)] == [0, 0, 0]
    assert len(cli("list", "--json", "--db", sqlite_url).json()["tasks"]) == 3
    assert not (tmp_path / "other.sqlite3").exists()


def test_sqlite_default_is_created_on_first_use(cli: Cli, tmp_path: Path) -> None:
    result = cli("enqueue", ECHO)  # no --db, no TASKTABLE_DATABASE_URL
    assert result.code == 0, result.err
    assert (tmp_path / "var" / "tasktable.sqlite3").exists()
    assert cli("list", "--json").json()["tasks"][0]["id"] == int(result.out)


# -- list and show -------------------------------------------------------------------
def test_list_filters_and_pages(cli: Cli, url: str, table: TaskTable) -> None:
    done = _finish(table, TaskStatus.SUCCESS, "ok")
    failed = _finish(table, TaskStatus.ERROR, "boom")
    pending = table.enqueue(ECHO, {}, name="Export orders").id

    everything = cli("list", "--json", "--db", url)
    assert everything.code == 0, everything.err
    data = everything.json()
    assert [t["id"] for t in data["tasks"]] == [pending, failed, done]  # newest first
    assert data["next_cursor"] is None
    assert set(data["tasks"][0]) >= SEED_COLUMNS

    by_status = cli("list", "--status", "error", "--status", "success", "--json", "--db", url)
    assert [t["id"] for t in by_status.json()["tasks"]] == [failed, done]
    by_name = cli("list", "--name", "export", "--json", "--db", url)
    assert [t["id"] for t in by_name.json()["tasks"]] == [pending]

    page = cli("list", "--limit", "2", "--json", "--db", url).json()
    assert [t["id"] for t in page["tasks"]] == [pending, failed]
    rest = cli("list", "--limit", "2", "--cursor", page["next_cursor"], "--json", "--db", url)
    assert [t["id"] for t in rest.json()["tasks"]] == [done]


def test_list_json_shows_each_task_files(cli: Cli, url: str, table: TaskTable) -> None:
    plain = table.enqueue(ECHO, {}).id
    with_file = table.enqueue(ECHO, {}).id
    claimed = table.storage.claim("test-worker", (), 2)
    running = next(t for t in claimed if t.id == with_file)
    assert table.storage.attach_file(running, "report.csv", "text/csv", b"id\n1\n")

    tasks = {t["id"]: t for t in cli("list", "--json", "--db", url).json()["tasks"]}

    assert tasks[with_file]["files"] == [
        {"filename": "report.csv", "content_type": "text/csv", "size": 5}
    ]
    assert tasks[plain]["files"] == []


def test_list_text(cli: Cli, url: str, table: TaskTable) -> None:
    task_id = _finish(table, TaskStatus.ERROR)
    result = cli("list", "--db", url)
    assert result.code == 0, result.err
    assert "status" in result.out and "error" in result.out
    assert str(task_id) in result.out


def test_text_from_tasks_is_printed_as_is(
    cli: Cli, url: str, table: TaskTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Names and args that look like Rich markup are shown literally."""
    monkeypatch.setenv("COLUMNS", "200")  # no wrapping inside the name
    name = "Export [/orders] [red]now"
    task_id = table.enqueue(ECHO, {"q": "[bold]x[/bold]"}, name=name).id

    listed = cli("list", "--db", url, "--name", "export")
    shown = cli("show", str(task_id), "--db", url)

    assert listed.code == shown.code == 0, listed.err + shown.err
    assert "[/orders]" in listed.out
    assert name in shown.out
    assert '{"q": "[bold]x[/bold]"}' in shown.out


def test_list_empty(cli: Cli, url: str) -> None:
    result = cli("list", "--json", "--db", url)
    assert result.code == 0
    assert result.json() == {"tasks": [], "next_cursor": None}


def test_show(cli: Cli, url: str, table: TaskTable) -> None:
    task_id = _finish(table, TaskStatus.SUCCESS, "Order statuses updated for complete orders.")

    text = cli("show", str(task_id), "--db", url)
    data = cli("show", str(task_id), "--json", "--db", url).json()

    assert text.code == 0, text.err
    for word in ("success", ECHO, "Order statuses updated for complete orders.", "finished_at"):
        assert word in text.out
    assert set(data) >= SEED_COLUMNS | OURS
    assert data["status"] == "success"
    assert data["messages"][0]["text"] == "Order statuses updated for complete orders."
    assert data["attempts"] == 1
    assert data["executed_at"] is not None and data["finished_at"] is not None


# -- retry, cancel, delete -----------------------------------------------------------
def test_cancel_retry_delete(cli: Cli, url: str, table: TaskTable) -> None:
    first = table.enqueue(ECHO, {}).id
    second = table.enqueue(ECHO, {}).id

    cancelled = cli("cancel", str(first), str(second), "--db", url)
    assert cancelled.code == 0, cancelled.err
    assert cancelled.out.strip() == f"Cancelled: {first}, {second}."
    assert table.get(first).status is TaskStatus.CANCELLED

    retried = cli("retry", str(first), "--json", "--db", url)
    assert retried.code == 0, retried.err
    assert retried.json() == {"retried": [first], "unchanged": []}
    assert table.get(first).status is TaskStatus.PENDING

    deleted = cli("delete", str(first), "--db", url)
    assert deleted.code == 0, deleted.err
    assert deleted.out.strip() == f"Deleted: {first}."
    as_json = cli("delete", str(second), "--json", "--db", url)
    assert as_json.json() == {"deleted": [second], "unchanged": []}
    assert table.count() == 0


def test_retry_an_error_task(cli: Cli, url: str, table: TaskTable) -> None:
    task_id = _finish(table, TaskStatus.ERROR, "boom")
    result = cli("retry", str(task_id), "--db", url)
    assert result.code == 0, result.err
    task = table.get(task_id)
    assert task.status is TaskStatus.PENDING and task.finished_at is None


def test_a_status_that_does_not_allow_the_move(cli: Cli, url: str, table: TaskTable) -> None:
    done = _finish(table, TaskStatus.SUCCESS)
    failed = _finish(table, TaskStatus.ERROR)
    before = snapshot(url)

    nothing = cli("retry", str(done), "--db", url)
    assert nothing.code == 1
    assert nothing.error_line() == (
        f"Error: task {done} was not retried: it is success; "
        "only error or cancelled tasks can be retried."
    )
    assert snapshot(url) == before

    some = cli("retry", str(done), str(failed), "--json", "--db", url)
    assert some.code == 1
    assert some.json() == {"retried": [failed], "unchanged": [done]}
    assert table.get(failed).status is TaskStatus.PENDING

    cancel = cli("cancel", str(done), "--json", "--db", url)
    assert cancel.code == 1
    assert cancel.json() == {"cancelled": [], "stop_requested": [], "unchanged": [done]}


def test_retry_refused_while_another_task_holds_the_unique_key(
    cli: Cli, url: str, table: TaskTable
) -> None:
    failed = table.enqueue(ECHO, {}, unique_key="orders-1").id
    claimed = table.storage.claim("test-worker", (), 1)
    assert table.storage.finish(claimed[0], Outcome(status=TaskStatus.ERROR, messages=()))
    live = table.enqueue(ECHO, {}, unique_key="orders-1").id
    assert live != failed
    before = snapshot(url)

    result = cli("retry", str(failed), "--db", url)

    assert result.error_line() == (
        f"Error: task {failed} was not retried: another pending or running task "
        "has its unique key 'orders-1'."
    )
    assert snapshot(url) == before


def test_cancel_a_running_task_asks_it_to_stop(cli: Cli, url: str, table: TaskTable) -> None:
    task_id = table.enqueue(ECHO, {}).id
    assert table.storage.claim("test-worker", (), 1)

    text = cli("cancel", str(task_id), "--db", url)
    data = cli("cancel", str(task_id), "--json", "--db", url).json()

    assert text.code == 0, text.err
    assert text.out.strip() == f"Asked running task(s) {task_id} to stop."
    assert data == {"cancelled": [], "stop_requested": [task_id], "unchanged": []}
    task = table.get(task_id)
    assert task.status is TaskStatus.RUNNING and task.cancel_requested


# -- clean ---------------------------------------------------------------------------
@pytest.fixture
def aged(table: TaskTable) -> dict[str, int]:
    """Finished tasks of several ages, and pending/running ones that look ancient."""
    ids = {
        "old_success": _finish(table, TaskStatus.SUCCESS),
        "old_error": _finish(table, TaskStatus.ERROR),
        "recent_success": _finish(table, TaskStatus.SUCCESS),
        "hours_old_error": _finish(table, TaskStatus.ERROR),
        "new_success": _finish(table, TaskStatus.SUCCESS),
    }
    ids["old_cancelled"] = table.enqueue(ECHO, {}).id
    table.cancel(ids["old_cancelled"])
    ids["old_running"] = table.enqueue(ECHO, {}).id
    assert [t.id for t in table.storage.claim("test-worker", (), 1)] == [ids["old_running"]]
    ids["old_pending"] = table.enqueue(ECHO, {}).id
    for name in ("old_success", "old_error", "old_cancelled", "old_running", "old_pending"):
        _age(table, ids[name], 31)
    _age(table, ids["recent_success"], 29)
    _age(table, ids["hours_old_error"], 2 / 24)
    return ids


def _left(table: TaskTable) -> set[int]:
    return {t.id for t in table.list(limit=1000).tasks}


def test_clean_dry_run_deletes_nothing(
    cli: Cli, url: str, table: TaskTable, aged: dict[str, int]
) -> None:
    before = snapshot(url)

    text = cli("clean", "--dry-run", "--db", url)
    data = cli("clean", "--dry-run", "--json", "--db", url).json()

    assert text.code == 0, text.err
    assert text.out.strip() == "Would delete 3 task(s) finished more than 30d ago."
    assert data == {"would_delete": 3, "older_than_seconds": 30 * 86400.0}
    assert snapshot(url) == before


def test_clean_default_is_30_days_and_never_live_tasks(
    cli: Cli, url: str, table: TaskTable, aged: dict[str, int]
) -> None:
    result = cli("clean", "--db", url)

    assert result.code == 0, result.err
    assert result.out.strip() == "Deleted 3 task(s) finished more than 30d ago."
    gone = {aged["old_success"], aged["old_error"], aged["old_cancelled"]}
    assert _left(table) == set(aged.values()) - gone


def test_clean_by_status(cli: Cli, url: str, table: TaskTable, aged: dict[str, int]) -> None:
    result = cli("clean", "--status", "error", "--json", "--db", url)

    assert result.code == 0, result.err
    assert result.json()["deleted"] == 1
    assert aged["old_error"] not in _left(table)
    assert aged["old_success"] in _left(table)


def test_clean_older_than(cli: Cli, url: str, table: TaskTable, aged: dict[str, int]) -> None:
    result = cli("clean", "--older-than", "1h", "--json", "--db", url)

    assert result.code == 0, result.err
    assert result.json() == {"deleted": 5, "older_than_seconds": 3600.0}
    assert _left(table) == {aged["old_running"], aged["old_pending"], aged["new_success"]}


def test_clean_retention_from_the_environment(
    cli: Cli, url: str, table: TaskTable, aged: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASKTABLE_RETENTION", "7d")
    result = cli("clean", "--db", url)
    assert result.out.strip() == "Deleted 4 task(s) finished more than 7d ago."


def test_clean_in_batches(cli: Cli, url: str, table: TaskTable) -> None:
    ids = [_finish(table, TaskStatus.SUCCESS) for _ in range(5)]
    for task_id in ids:
        _age(table, task_id, 40)
    result = cli("clean", "--batch-size", "2", "--json", "--db", url)
    assert result.json()["deleted"] == 5
    assert table.count() == 0


# -- stats ---------------------------------------------------------------------------
def test_stats(cli: Cli, url: str, table: TaskTable) -> None:
    _finish(table, TaskStatus.SUCCESS)
    _finish(table, TaskStatus.ERROR)
    table.enqueue(ECHO, {}, queue="mass")

    data = cli("stats", "--json", "--db", url).json()
    text = cli("stats", "--db", url)

    assert data["by_status"] == {
        "pending": 1,
        "running": 0,
        "success": 1,
        "error": 1,
        "cancelled": 0,
    }
    assert data["by_queue"]["mass"]["pending"] == 1
    assert data["by_queue"]["default"]["success"] == 1
    assert data["total"] == 3
    assert data["finished_last_hour"] == 2
    assert data["oldest_pending_age_seconds"] is not None
    assert text.code == 0, text.err
    assert "mass" in text.out and "Oldest due pending task" in text.out


# -- worker and crontab (in-process; the subprocess ones are in tests/acceptance) ----
def test_worker_burst_runs_due_tasks(cli: Cli, url: str, table: TaskTable) -> None:
    ok = table.enqueue(ECHO, {"order_ids": [1]}).id
    failed = table.enqueue("tests.support.handlers:Boom", {}).id
    later = table.enqueue(ECHO, {}, delay="1h").id

    result = cli("worker", "--burst", "--slots", "2", "--db", url)

    assert result.code == 0, result.err
    assert table.get(ok).status is TaskStatus.SUCCESS
    assert table.get(failed).status is TaskStatus.ERROR
    assert table.get(later).status is TaskStatus.PENDING
    assert table.stats().workers == []  # deregistered on the way out


def test_worker_serves_only_its_queues(cli: Cli, url: str, table: TaskTable) -> None:
    mass = table.enqueue(ECHO, {}, queue="mass").id
    other = table.enqueue(ECHO, {}, queue="reports").id

    result = cli("worker", "--burst", "--queue", "mass", "--db", url)

    assert result.code == 0, result.err
    assert table.get(mass).status is TaskStatus.SUCCESS
    assert table.get(other).status is TaskStatus.PENDING


def test_crontab_prints_cron_lines(cli: Cli, tmp_path: Path) -> None:
    url = "postgresql://app:p%40ss@db.example/tasks"
    result = cli("--db", url, "crontab", "--every", "5", "--slots", "3", "--queue", "mass")

    assert result.code == 0, result.err
    lines = [line for line in result.out.splitlines() if line and not line.startswith("#")]
    assert len(lines) == 2
    worker, clean = lines
    assert worker.split()[:5] == ["*/5", "*", "*", "*", "*"]
    assert "worker --burst --slots 3 --queue mass --max-seconds 295" in worker
    assert clean.split()[:5] == ["17", "3", "*", "*", "*"]
    assert clean.split(">>")[0].rstrip().endswith(" clean")
    for line in lines:
        # cron reads an unescaped % as a newline: every % must be escaped.
        assert "%" not in line.replace("\\%", "")
        assert "p\\%40ss" in line
        assert f"cd {tmp_path} && mkdir -p var/log/tasktable && " in line


def test_help_and_version(cli: Cli) -> None:
    assert cli("--help").code == 0
    assert cli("worker", "-h").code == 0
    version = cli("--version")
    assert version.code == 0 and "version" in version.out
