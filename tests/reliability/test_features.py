"""Worker behaviours beside the scenario table: cancel, memory cap, retries, opt-outs.

Each runs real ``tasktable worker`` processes on SQLite (the behaviour under
test is the worker's, the same on every database), except where a server is
the point.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tasktable import TaskTable

from .conftest import WORK, Cluster, H, wait_for

pytestmark = pytest.mark.reliability


@pytest.mark.timeout(90)
def test_cancel_a_running_task(lite: Cluster) -> None:
    polite, stubborn = lite.enqueue(
        [
            {"handler": f"{H}:Cooperative", "args": {"seconds": 60}},
            {"handler": f"{H}:Stubborn", "args": {"seconds": 60}},
        ]
    )
    after = lite.enqueue([{"handler": WORK, "args": {"ms": 10}}] * 2)
    worker = lite.start("--slots", "2")
    wait_for(lambda: len(lite.starts()) == 2, 60, "both started")
    asked = time.monotonic()
    assert lite.table.cancel(polite, stubborn) == ([], [polite, stubborn])
    wait_for(lambda: lite.table.get(polite).status.value == "cancelled", 5, "the polite one")
    # TASKTABLE_CANCEL_GRACE is 2 s here: then the worker stops it (SIGTERM, SIGKILL).
    wait_for(lambda: lite.table.get(stubborn).status.value == "cancelled", 10, "the stubborn one")
    assert time.monotonic() - asked <= 8
    lite.wait_all_final(timeout=30)
    assert lite.stop_all() == {"w1": 0}
    texts = [m.text for m in lite.table.get(polite).messages]
    assert texts[-2:] == [
        "stopping: cancel requested",
        "Cancelled at request; the handler stopped.",
    ]
    assert "the worker stopped it after 2s" in lite.table.get(stubborn).messages[-1].text
    assert all(lite.table.get(i).status.value == "success" for i in after)  # slots reused
    assert "cancelled at request" in worker.log()


@pytest.mark.timeout(90)
def test_memory_cap_ends_the_task_not_the_slot(lite: Cluster) -> None:
    [hog] = lite.enqueue([{"handler": f"{H}:Hog", "args": {"mb": 4096}}])
    normal = lite.enqueue([{"handler": WORK, "args": {"ms": 10}}] * 3)
    lite.start("--slots", "1", env={"TASKTABLE_MAX_MEMORY": "1GB"})
    lite.wait_all_final(timeout=60)
    assert lite.stop_all() == {"w1": 0}
    task = lite.table.get(hog)
    assert task.status.value == "error"
    assert task.error is not None and ("MemoryError" in task.error or "died" in task.error)
    assert all(lite.table.get(i).status.value == "success" for i in normal)


@pytest.mark.timeout(90)
def test_no_rerun_after_a_loss_when_the_handler_opts_out(lite: Cluster) -> None:
    [once] = lite.enqueue([{"handler": f"{H}:NeverRerun", "args": {"seconds": 30}}])
    assert lite.scalar("SELECT rerun_on_loss FROM tasktable_task WHERE id = :i", i=once) in (
        0,
        False,
    )
    doomed = lite.start("--slots", "1")
    wait_for(lambda: lite.starts().get(once) == 1, 60, "it started")
    doomed.signal(signal.SIGKILL)
    doomed.wait(10)
    lite.start("--slots", "1")
    wait_for(lambda: lite.table.get(once).status.value == "error", 20, "rescued as error")
    assert lite.stop_all() == {"w2": 0}
    task = lite.table.get(once)
    assert task.error == "worker lost; not run again (rerun_on_loss = False)"
    assert lite.starts() == {once: 1}


@pytest.mark.timeout(90)
def test_retries_back_off_and_explicit_retry(lite: Cluster) -> None:
    flaky, polite = lite.enqueue([{"handler": f"{H}:Flaky"}, {"handler": f"{H}:RetryOnce"}])
    lite.start("--slots", "2")
    lite.wait_all_final(timeout=60)
    assert lite.stop_all() == {"w1": 0}
    runs = lite.query(
        "SELECT task_id, attempt, at FROM rel_ledger WHERE event = 'start' ORDER BY at"
    )
    flaky_runs = [at for t, _, at in runs if t == flaky]
    assert len(flaky_runs) == 3
    # back-off: 1-2 s after the first failure, 2-4 s after the second (base 2 s, jittered)
    assert 0.9 <= flaky_runs[1] - flaky_runs[0] <= 4.0
    assert 1.9 <= flaky_runs[2] - flaky_runs[1] <= 6.0
    task = lite.table.get(flaky)
    assert (task.status.value, task.attempts) == ("success", 3)
    notes = [m.text for m in task.messages if m.level == "warning"]
    assert [n.split(";")[0] for n in notes] == ["Attempt 1 of 3 failed", "Attempt 2 of 3 failed"]
    polite_runs = [at for t, _, at in runs if t == polite]
    assert len(polite_runs) == 2 and polite_runs[1] - polite_runs[0] >= 0.9
    retried = lite.table.get(polite)
    assert (retried.status.value, retried.attempts) == ("success", 2)
    assert "the remote side said later" in [m.text for m in retried.messages]


@pytest.mark.timeout(90)
@pytest.mark.services
def test_worker_exits_nonzero_after_max_db_outage(
    postgresql_url: str, settings: object, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    from sqlalchemy import create_engine, make_url, text

    table = TaskTable(postgresql_url, settings=settings)  # type: ignore[arg-type]
    table.migrate()
    c = Cluster(postgresql_url, table, tmp_path, subprocess_env)
    try:
        worker = c.start("--slots", "1", env={"TASKTABLE_MAX_DB_OUTAGE": "3s"})
        c.wait_registered(worker)
        table.close()
        c.engine.dispose()
        name = make_url(postgresql_url).database
        admin = create_engine(
            make_url(postgresql_url).set(database="postgres"), isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:  # the worker's database is gone: an outage without end
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
        gone = time.monotonic()
        assert worker.wait(30) == 3
        assert 3 <= time.monotonic() - gone <= 15
        assert "unreachable for" in worker.log()
    finally:
        c.close()
