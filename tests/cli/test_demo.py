"""``tasktable demo`` end to end: the real CLI in a subprocess, on a temporary SQLite file."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasktable import Task, TaskStatus, TaskTable
from tasktable.settings import Settings

MASS = "tasktable.demo.handlers:SetMassDeliveredHandler"
EXPORT = "tasktable.demo.handlers:ExportOrdersCsvHandler"
IMPORT = "tasktable.demo.handlers:FailingImportHandler"


def run_demo(
    tmp_path: Path, env: dict[str, str], url: str, *options: str
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "from tasktable.cli.main import run; run()"]
    return subprocess.run(
        [*command, "--db", url, "demo", "--no-serve", *options],  # the dashboard: tests/dashboard
        cwd=tmp_path,
        env={**env, "COLUMNS": "300"},  # Rich wraps at 80 columns when not on a terminal
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/demo.sqlite3"


@pytest.fixture
def table(url: str, settings: Settings) -> Iterator[TaskTable]:
    tt = TaskTable(url, settings=settings)
    try:
        yield tt
    finally:
        tt.close()


def tasks_by_handler(table: TaskTable) -> dict[str, list[Task]]:
    found: dict[str, list[Task]] = {}
    for summary in table.list(sort="id", limit=1000).tasks:
        found.setdefault(summary.handler, []).append(table.get(summary.id))
    return found


def test_demo_runs_the_seed_example_to_the_end(
    tmp_path: Path, subprocess_env: dict[str, str], url: str, table: TaskTable
) -> None:
    result = run_demo(tmp_path, subprocess_env, url)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""  # nothing alarming: the traceback goes to the log file
    out = result.stdout
    assert "ran inline: success" in out
    assert '"90 - Delivered | Update Status" will run in the background (task #' in out
    assert "Supplier feed at https://supplier.invalid/feed.xml is unreachable" in out
    assert "Traceback" not in out
    assert "tasktable --db" in out and " show " in out  # the what-next lines

    tasks = tasks_by_handler(table)
    assert set(tasks) == {MASS, EXPORT, IMPORT}
    mass = tasks[MASS]
    assert [t.status for t in mass] == [TaskStatus.SUCCESS] * 3  # 120 orders: 10 inline, 40+40+30
    assert sum(len(t.args["order_ids"]) for t in mass) == 110
    assert all(t.name == "90 - Delivered | Update Status" for t in mass)
    assert all(t.messages[-1].text == "Order statuses updated for complete orders." for t in mass)

    (export,) = tasks[EXPORT]
    assert export.status is TaskStatus.SUCCESS
    assert [f.filename for f in export.files] == [f"orders-{export.id}.csv"]
    assert export.action_link is not None and export.action_link.text == "Download CSV"
    _, data = table.read_file(export.id, f"orders-{export.id}.csv")
    rows = data.decode().splitlines()
    assert rows[0] == "order_id,status,comment" and len(rows) == 121

    (failed,) = tasks[IMPORT]
    assert failed.status is TaskStatus.ERROR
    assert failed.error is not None and "ConnectionError" in failed.error
    assert failed.messages[-1].level == "error"

    log = Path(subprocess_env["TASKTABLE_LOG_FILE"]).read_text()
    assert "Traceback" in log and "ConnectionError: Supplier feed" in log


def test_demo_runs_again_on_the_same_database(
    tmp_path: Path, subprocess_env: dict[str, str], url: str, table: TaskTable
) -> None:
    first = run_demo(tmp_path, subprocess_env, url, "--orders", "40", "--slots", "2")
    second = run_demo(tmp_path, subprocess_env, url, "--orders", "40", "--slots", "2")

    assert first.returncode == 0, first.stdout + first.stderr
    assert second.returncode == 0, second.stdout + second.stderr
    assert "schema created" in first.stdout and "schema up to date" in second.stdout
    tasks = tasks_by_handler(table)
    # 40 orders: 10 inline, 30 in the background; each run adds its own three tasks.
    assert [t.status for t in tasks[MASS]] == [TaskStatus.SUCCESS] * 2
    assert [t.status for t in tasks[EXPORT]] == [TaskStatus.SUCCESS] * 2
    assert [t.status for t in tasks[IMPORT]] == [TaskStatus.ERROR] * 2


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_stops_the_demo_dashboard(
    tmp_path: Path, subprocess_env: dict[str, str], url: str, signum: int
) -> None:
    """`make run` serves the dashboard after the demo "until Ctrl-C": the worker the demo
    ran in this process must not leave its own SIGINT handler behind."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-c", "from tasktable.cli.main import run; run()"]
    process = subprocess.Popen(
        [*command, "--db", url, "demo", "--orders", "10", "--port", str(port)],
        cwd=tmp_path,
        env={**subprocess_env, "COLUMNS": "300"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    try:
        seen = []
        deadline = time.monotonic() + 90
        for line in process.stdout:
            seen.append(line)
            if "Ctrl-C stops it" in line or time.monotonic() > deadline:
                break
        assert any("Ctrl-C stops it" in line for line in seen), "".join(seen)
        time.sleep(0.5)
        process.send_signal(signum)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
