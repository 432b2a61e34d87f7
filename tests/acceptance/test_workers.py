"""Worker processes through the real CLI: many workers on one table, slots, --burst,
--max-seconds, SIGTERM and the crontab lines."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tasktable import TaskTable
from tasktable.core.status import TaskStatus
from tests.support.cli import wait_for

from .conftest import StartWorker, Tasktable, worker_log

H = "tests.support.handlers"
SLEEP = f"{H}:Sleep"

_LEDGER_DDL = {
    "sqlite": "CREATE TABLE ledger (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "task_id INTEGER NOT NULL, pid INTEGER NOT NULL)",
    "postgresql": "CREATE TABLE ledger (id BIGSERIAL PRIMARY KEY, "
    "task_id BIGINT NOT NULL, pid INTEGER NOT NULL)",
    "mysql": "CREATE TABLE ledger (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
    "task_id BIGINT NOT NULL, pid INTEGER NOT NULL)",
}


def _ledger_url(url: str, backend: str, tmp_path: Path) -> str:
    """Where the Ledger handler records each run: a table beside the tasks on a server,
    a file of its own on SQLite (so ledger writes do not queue behind claims)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/ledger.sqlite3?timeout=60"
    return url


def _wait(proc: subprocess.Popen[str], timeout: float) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the worker was still running after {timeout}s") from None


def test_three_workers_run_each_of_2000_tasks_exactly_once(
    url: str, backend: str, reader: TaskTable, start_worker: StartWorker, tmp_path: Path
) -> None:
    ledger_url = _ledger_url(url, backend, tmp_path)
    ledger = create_engine(ledger_url, poolclass=NullPool)
    with ledger.begin() as conn:
        conn.execute(text(_LEDGER_DDL["mysql" if backend == "mariadb" else backend]))
    tasks = reader.enqueue_many(
        {"handler": f"{H}:Ledger", "args": {"ledger_url": ledger_url}} for _ in range(2000)
    )
    ids = {t.id for t in tasks}

    workers = [start_worker("--burst", "--slots", "5", "--db", url) for _ in range(3)]
    codes = [_wait(proc, timeout=240) for proc in workers]

    assert codes == [0, 0, 0], [worker_log(tmp_path, n) for n in range(3)]
    with ledger.connect() as conn:
        runs = conn.execute(text("SELECT task_id, COUNT(*) FROM ledger GROUP BY task_id")).all()
    ledger.dispose()
    twice = {task_id: n for task_id, n in runs if n != 1}
    assert twice == {}, f"tasks run more than once: {twice}"
    assert {int(task_id) for task_id, _ in runs} == ids
    assert reader.count(status="success") == 2000
    assert reader.count(status=["pending", "running", "error"]) == 0
    with reader.storage.engine.connect() as conn:
        shared = conn.execute(text("SELECT COUNT(DISTINCT worker) FROM tasktable_task")).scalar()
    assert shared is not None and shared >= 2, "one worker ran every task: nothing was shared"


def _ledger_events(path: Path) -> list[tuple[str, int, float]]:
    events = []
    for line in path.read_text().splitlines():
        kind, task_id, when, _pid = line.split()
        events.append((kind, int(task_id), float(when)))
    return events


def _max_overlap(events: list[tuple[str, int, float]]) -> int:
    """The most tasks running at one instant (an end at t comes before a start at t)."""
    running = peak = 0
    for kind, _, _ in sorted(events, key=lambda e: (e[2], e[0] == "start")):
        running += 1 if kind == "start" else -1
        peak = max(peak, running)
    return peak


def test_ten_one_second_tasks_take_about_two_seconds_on_five_slots(
    sqlite_url: str, start_worker: StartWorker, tmp_path: Path
) -> None:
    ledger = tmp_path / "sleep-ledger.txt"
    with TaskTable(sqlite_url) as table:
        table.enqueue_many(
            {"handler": SLEEP, "args": {"seconds": 1, "ledger": str(ledger)}} for _ in range(10)
        )

        began = time.monotonic()
        proc = start_worker("--burst", "--db", sqlite_url)  # the default: 5 slots
        code = _wait(proc, timeout=60)
        wall = time.monotonic() - began

        assert code == 0, worker_log(tmp_path)
        assert table.count(status="success") == 10
    events = _ledger_events(ledger)
    starts = [when for kind, _, when in events if kind == "start"]
    ends = [when for kind, _, when in events if kind == "end"]
    assert len(starts) == len(ends) == 10
    # About 2 s: two rounds of five. The bound is generous because slots may come up a
    # little apart on a loaded machine; the overlap below proves the five at once.
    span = max(ends) - min(starts)
    assert 1.9 <= span < 6, f"10 one-second tasks on 5 slots took {span:.2f}s of work"
    assert wall < 30, f"the burst worker took {wall:.1f}s from start to exit"
    assert _max_overlap(events) == 5


def test_max_seconds_stops_claiming_and_exits_when_running_tasks_end(
    sqlite_url: str, start_worker: StartWorker, tmp_path: Path
) -> None:
    ledger = tmp_path / "sleep-ledger.txt"
    with TaskTable(sqlite_url) as table:
        first = table.enqueue(SLEEP, {"seconds": 4, "ledger": str(ledger)}).id

        proc = start_worker("--slots", "1", "--max-seconds", "3", "--db", sqlite_url)
        wait_for(lambda: ledger.exists(), timeout=30, what="the first task to start")
        # The slot is busy; these stay due while --max-seconds runs out, and must stay pending.
        later = [table.enqueue(SLEEP, {"seconds": 0.1}).id for _ in range(2)]
        code = _wait(proc, timeout=60)

        assert code == 0, worker_log(tmp_path)
        assert table.get(first).status is TaskStatus.SUCCESS  # it finished before the exit
        for task_id in later:
            task = table.get(task_id)
            assert task.status is TaskStatus.PENDING and task.attempts == 0
    assert [kind for kind, _, _ in _ledger_events(ledger)] == ["start", "end"]


def test_burst_exits_zero_when_nothing_is_due(
    tasktable: Tasktable, sqlite_url: str, tmp_path: Path
) -> None:
    empty = tasktable("worker", "--burst", "--db", sqlite_url, timeout=60)
    assert empty.code == 0, empty.err

    later = tasktable("enqueue", f"{H}:Echo", "--delay", "1h", "--db", sqlite_url)
    assert later.code == 0, later.err
    not_due = tasktable("worker", "--burst", "--db", sqlite_url, timeout=60)

    assert not_due.code == 0, not_due.err
    shown = tasktable("show", later.out.strip(), "--json", "--db", sqlite_url).json()
    assert shown["status"] == "pending"
    assert shown["attempts"] == 0


def test_sigterm_lets_the_running_task_finish(
    sqlite_url: str, start_worker: StartWorker, tmp_path: Path
) -> None:
    ledger = tmp_path / "sleep-ledger.txt"
    with TaskTable(sqlite_url) as table:
        task_id = table.enqueue(SLEEP, {"seconds": 3, "ledger": str(ledger)}).id
        proc = start_worker("--db", sqlite_url)  # a long-running worker, not --burst
        wait_for(lambda: ledger.exists(), timeout=30, what="the task to start")

        proc.send_signal(signal.SIGTERM)
        code = _wait(proc, timeout=60)

        assert code == 0, worker_log(tmp_path)
        task = table.get(task_id)
        assert task.status is TaskStatus.SUCCESS, (task.status, task.messages)
        assert task.finished_at is not None and task.executed_at is not None
        assert (task.finished_at - task.executed_at).total_seconds() >= 2.9
        assert table.count(status="running") == 0
        assert table.stats().workers == []
    assert [kind for kind, _, _ in _ledger_events(ledger)] == ["start", "end"]


@pytest.mark.parametrize("every", ["1", "5"])
def test_the_crontab_worker_line_runs_as_cron_would(
    tasktable: Tasktable, sqlite_url: str, env: dict[str, str], tmp_path: Path, every: str
) -> None:
    task = tasktable("enqueue", f"{H}:Echo", "--db", sqlite_url)
    assert task.code == 0, task.err
    printed = tasktable("--db", sqlite_url, "crontab", "--every", every)
    assert printed.code == 0, printed.err
    lines = [line for line in printed.out.splitlines() if line and not line.startswith("#")]
    worker_line = next(line for line in lines if " worker --burst " in line)
    fields = worker_line.split(maxsplit=5)
    assert fields[:5] == ["*" if every == "1" else f"*/{every}", "*", "*", "*", "*"]

    # cron runs the rest with /bin/sh, a minimal PATH, from the home directory.
    command = fields[5].replace("\\%", "%")
    cron_env = {k: v for k, v in env.items() if k != "PATH"} | {"PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        ["/bin/sh", "-c", command], env=cron_env, cwd="/", timeout=120, check=False
    )

    assert done.returncode == 0
    shown = tasktable("show", task.out.strip(), "--json", "--db", sqlite_url).json()
    assert shown["status"] == "success"
    assert (tmp_path / "var" / "log" / "tasktable" / "cron.log").exists()
