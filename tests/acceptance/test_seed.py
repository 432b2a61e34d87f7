"""The seed module's behaviour end to end, through the real CLI, on every database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tasktable import TaskTable

from .conftest import Tasktable

H = "tests.support.handlers"
MASS_ACTION = "tasktable.demo.handlers:SetMassDeliveredHandler"


def _enqueue(tasktable: Tasktable, url: str, handler: str, *args: str) -> int:
    result = tasktable("enqueue", handler, *args, "--db", url)
    assert result.code == 0, result.err
    return int(result.out)


def _burst(tasktable: Tasktable, url: str) -> None:
    result = tasktable("worker", "--burst", "--db", url)
    assert result.code == 0, result.err


def _show(tasktable: Tasktable, url: str, task_id: int) -> dict[str, Any]:
    result = tasktable("show", str(task_id), "--json", "--db", url)
    assert result.code == 0, result.err
    data: dict[str, Any] = result.json()
    return data


def _all(tasktable: Tasktable, url: str) -> dict[int, dict[str, Any]]:
    """Every task, by id, from one ``list --json`` (one subprocess instead of one per task)."""
    result = tasktable("list", "--json", "--limit", "1000", "--db", url)
    assert result.code == 0, result.err
    return {t["id"]: t for t in result.json()["tasks"]}


def _texts(task: dict[str, Any]) -> list[str]:
    messages = task["messages"]
    assert isinstance(messages, list)
    return [m["text"] for m in messages]


def test_the_seed_mass_action(tasktable: Tasktable, url: str, tmp_path: Path) -> None:
    """Enqueue "90 - Delivered | Update Status" for some orders; a burst worker runs it.
    The same action without order_ids fails as the seed's does."""
    task_id = _enqueue(
        tasktable,
        url,
        MASS_ACTION,
        "--args",
        json.dumps({"order_ids": ["357028", 357029, 357030], "seconds_per_order": 0}),
    )
    missing = _enqueue(tasktable, url, MASS_ACTION, "--args", "{}")
    pending = _show(tasktable, url, task_id)
    assert pending["status"] == "pending"
    assert pending["name"] == "90 - Delivered | Update Status"

    _burst(tasktable, url)

    task = _show(tasktable, url, task_id)
    assert task["status"] == "success"
    assert "Order statuses updated for complete orders." in _texts(task)
    assert task["progress"] == {"done": 3, "total": 3}
    assert task["executed_at"] is not None and task["finished_at"] is not None
    assert task["error"] is None
    orders = json.loads((tmp_path / "orders.json").read_text())
    assert sorted(orders) == ["357028", "357029", "357030"]
    assert {o["status"] for o in orders.values()} == {"complete_delivered"}
    failed = _show(tasktable, url, missing)
    assert failed["status"] == "error"
    assert "Argument order_ids is missing." in _texts(failed)


def test_each_way_a_task_ends(
    tasktable: Tasktable, url: str, reader: TaskTable, env: dict[str, str]
) -> None:
    """An exception, task.fail, an async handler and an @handler function, in one burst.
    (Enqueued in-process to keep subprocesses few; the CLI enqueue is tested above.)"""
    boom = reader.enqueue(f"{H}:Boom").id
    soft = reader.enqueue(f"{H}:SoftFail").id
    async_ = reader.enqueue(f"{H}:AsyncEcho").id
    function = reader.enqueue(f"{H}:plain_function", [1, 2]).id
    progressive = reader.enqueue(f"{H}:Progressive", {"total": 4}).id

    _burst(tasktable, url)
    tasks = _all(tasktable, url)

    raised = tasks[boom]
    assert raised["status"] == "error"
    assert _texts(raised) == ["about to fail", "boom: something broke"]
    assert isinstance(raised["error"], str)
    assert raised["error"].startswith("Traceback (most recent call last):")
    assert "RuntimeError: boom: something broke" in raised["error"]
    assert raised["finished_at"] is not None
    log = Path(env["TASKTABLE_LOG_FILE"]).read_text()
    assert "boom: something broke" in log
    assert "Traceback (most recent call last):" in log
    assert 'raise RuntimeError("boom: something broke")' in log

    failed = tasks[soft]
    assert failed["status"] == "error"
    assert _texts(failed) == ["the order was already shipped"]
    assert "Traceback" not in str(failed["error"])

    assert tasks[async_]["status"] == "success"
    assert "async done" in _texts(tasks[async_])
    ran = tasks[function]
    assert ran["status"] == "success"
    assert ran["name"] == "Plain function"
    assert _texts(ran) == ["function got [1, 2]"]

    reported = tasks[progressive]
    assert reported["status"] == "success"
    assert reported["progress"] == {"done": 4, "total": 4}
    assert reported["action_link"] == {
        "text": "Download CSV",
        "route_path": "reports/download",
        "route_params": {"file": "x.csv"},
    }
    assert reported["files"] == [{"filename": "report.csv", "content_type": "text/csv", "size": 15}]


def test_a_path_that_is_no_handler_ends_error_at_run_time(
    tasktable: Tasktable, url: str, reader: TaskTable
) -> None:
    """verify=False (--no-verify) skips the enqueue check; the worker checks again and
    says what is wrong."""
    missing = reader.enqueue("tests.support.nowhere:Gone", verify=False).id
    plain = reader.enqueue(f"{H}:NotAHandler", verify=False).id
    function = reader.enqueue(f"{H}:not_a_handler", verify=False).id

    _burst(tasktable, url)
    tasks = _all(tasktable, url)

    gone = tasks[missing]
    assert gone["status"] == "error"
    assert "cannot be imported" in _texts(gone)[0]
    for task_id in (plain, function):
        task = tasks[task_id]
        assert task["status"] == "error"
        assert "is not a handler" in _texts(task)[0]


def test_allowlist_set_at_run_time_is_checked_before_import(
    tasktable: Tasktable, sqlite_url: str, tmp_path: Path
) -> None:
    """Enqueued while TASKTABLE_HANDLERS was unset; the worker has it set and must refuse
    the task without importing its module (the canary leaves a marker when imported)."""
    marker = tmp_path / "canary-imported"
    canary = _enqueue(tasktable, sqlite_url, "tests.support.canary:Canary", "--no-verify")
    allowed = _enqueue(tasktable, sqlite_url, f"{H}:Echo")
    assert not marker.exists()

    result = tasktable(
        "worker",
        "--burst",
        "--db",
        sqlite_url,
        extra_env={"TASKTABLE_HANDLERS": f"{H}:*", "TASKTABLE_CANARY_MARKER": str(marker)},
    )

    assert result.code == 0, result.err
    tasks = _all(tasktable, sqlite_url)
    refused = tasks[canary]
    assert refused["status"] == "error"
    assert "TASKTABLE_HANDLERS" in _texts(refused)[0]
    assert "not allowed" in _texts(refused)[0]
    assert not marker.exists(), "the worker imported a handler outside TASKTABLE_HANDLERS"
    assert tasks[allowed]["status"] == "success"


def test_enqueue_list_and_stats_through_the_executable(
    tasktable: Tasktable, sqlite_url: str
) -> None:
    ids = [_enqueue(tasktable, sqlite_url, f"{H}:Echo", "--args", f"[{n}]") for n in range(3)]
    assert list(_all(tasktable, sqlite_url)) == ids[::-1]
    _burst(tasktable, sqlite_url)
    stats = tasktable("stats", "--json", "--db", sqlite_url)
    assert stats.code == 0, stats.err
    assert stats.json()["by_status"]["success"] == 3
