"""Periodic tasks: cron expressions (pure), and one enqueue per tick however many workers."""

from __future__ import annotations

import subprocess
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tasktable import TaskTable
from tasktable.core.cron import Cron
from tasktable.errors import InvalidInput
from tasktable.settings import Settings
from tasktable.worker.periodic import Periodic, Scheduler, load_periodic, plan, tick_key

from .conftest import TASKTABLE, WORK


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# -- cron expressions (no I/O) -----------------------------------------------------
@pytest.mark.parametrize(
    ("expression", "moment", "latest"),
    [
        ("* * * * *", "2026-03-04 10:17:42", "2026-03-04 10:17"),
        ("*/15 * * * *", "2026-03-04 10:17:00", "2026-03-04 10:15"),
        ("0 3 * * *", "2026-03-04 02:59:59", "2026-03-03 03:00"),
        ("0 3 * * *", "2026-03-04 03:00:00", "2026-03-04 03:00"),
        ("30 9 * * mon-fri", "2026-03-08 12:00", "2026-03-06 09:30"),  # Sunday -> Friday
        ("0 0 1 * *", "2026-03-04 00:00", "2026-03-01 00:00"),
        ("0 0 29 2 *", "2026-03-04 00:00", "2024-02-29 00:00"),
        ("@hourly", "2026-03-04 10:59", "2026-03-04 10:00"),
        ("@weekly", "2026-03-04 10:00", "2026-03-01 00:00"),  # Sundays
        ("0 12 13 * 5", "2026-03-12 13:00", "2026-03-06 12:00"),  # the 13th OR a Friday
        ("5,10-12 * * jan *", "2026-03-04 00:00", "2026-01-31 23:12"),
        ("0 0 * * 7", "2026-03-04 00:00", "2026-03-01 00:00"),  # 7 is Sunday too
    ],
)
def test_latest_tick(expression: str, moment: str, latest: str) -> None:
    assert Cron.parse(expression).latest(at(moment)) == at(latest)


def test_next_tick_and_never() -> None:
    assert Cron.parse("*/15 * * * *").next_after(at("2026-03-04 10:15")) == at("2026-03-04 10:30")
    assert Cron.parse("0 0 30 2 *").latest(at("2026-03-04 00:00")) is None


@pytest.mark.parametrize(
    "expression",
    [
        "",
        "* * * *",
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * * 13 *",
        "5-1 * * * *",
        "*/0 * * * *",
        "x * * * *",
    ],
)
def test_bad_expressions_say_why(expression: str) -> None:
    with pytest.raises(InvalidInput, match=r"[Cc]ron"):
        Cron.parse(expression)


# -- the scheduler on each database -----------------------------------------------
def schedule(cron: str = "*/5 * * * *") -> list[Periodic]:
    return [Periodic(name="report", cron=cron, handler=WORK, args={"ms": 1})]


def test_each_tick_is_enqueued_once_by_concurrent_workers(db_url: str, table: TaskTable) -> None:
    clock = {"now": at("2026-03-04 10:03:10")}
    tables = [TaskTable(db_url, settings=table.settings) for _ in range(3)]
    schedulers = [
        Scheduler(t.storage, plan(t, schedule()), now=lambda: clock["now"]) for t in tables
    ]
    try:
        # First sight, 3 minutes after the 10:00 tick: recorded, not enqueued.
        _all_at_once(schedulers)
        assert table.count() == 0
        for minute in ("10:05:01", "10:05:30", "10:09:59", "10:10:00", "10:25:02"):
            clock["now"] = at(f"2026-03-04 {minute}")
            _all_at_once(schedulers)
        tasks = table.list(sort="id").tasks
        # 10:05, 10:10, then after a gap only the latest missed tick, 10:25.
        assert [t.unique_key for t in tasks] == [
            tick_key("report", at(f"2026-03-04 {m}")) for m in ("10:05", "10:10", "10:25")
        ]
        assert all(t.handler == WORK and t.args == {"ms": 1} for t in tasks)
        assert sum(s.enqueued for s in schedulers) == 3
        assert table.storage.periodic_ticks() == {"report": at("2026-03-04 10:25")}
    finally:
        for t in tables:
            t.close()


def _all_at_once(schedulers: list[Scheduler]) -> None:
    barrier = threading.Barrier(len(schedulers))
    errors: list[BaseException] = []

    def go(s: Scheduler) -> None:
        try:
            barrier.wait(10)
            s.run_once()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(s,)) for s in schedulers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []


def test_a_fresh_first_tick_is_enqueued(table: TaskTable) -> None:
    scheduler = Scheduler(
        table.storage, plan(table, schedule()), now=lambda: at("2026-03-04 10:05:20")
    )
    assert [t.unique_key for t in scheduler.run_once()] == [
        tick_key("report", at("2026-03-04 10:05"))
    ]
    assert scheduler.run_once() == []  # the same tick again: nothing


def test_the_cleaner_tick_goes_to_one_worker(table: TaskTable) -> None:
    tick = at("2026-03-04 10:00")
    results = [table.storage.take_tick("tasktable:cleaner", tick, None) for _ in range(3)]
    assert [won for won, _ in results] == [True, False, False]
    assert table.storage.take_tick("tasktable:cleaner", tick + timedelta(hours=1), None)[0]


# -- declaring them ----------------------------------------------------------------
def test_load_from_toml_json_and_code(tmp_path: Path) -> None:
    toml = tmp_path / "periodic.toml"
    toml.write_text(
        '[[periodic]]\nname = "nightly"\ncron = "0 3 * * *"\n'
        f'handler = "{WORK}"\nargs = {{ms = 5}}\nqueue = "reports"\n'
    )
    [nightly] = load_periodic(str(toml))
    assert (nightly.name, nightly.cron, nightly.args, nightly.queue) == (
        "nightly",
        "0 3 * * *",
        {"ms": 5},
        "reports",
    )
    js = tmp_path / "periodic.json"
    js.write_text(f'[{{"name": "n", "cron": "@daily", "handler": "{WORK}"}}]')
    assert load_periodic(str(js))[0].cron == "@daily"
    assert load_periodic("tests.reliability.test_periodic:DECLARED")[0].name == "in-code"


DECLARED = [Periodic(name="in-code", cron="@hourly", handler=WORK)]


@pytest.mark.parametrize(
    ("periodic", "message"),
    [
        (Periodic(name="x", cron="61 * * * *", handler=WORK), "outside 0-59"),
        (Periodic(name="x", cron="@daily", handler="no.such.module:H"), "cannot be imported"),
        (Periodic(name="tasktable:x", cron="@daily", handler=WORK), "must be"),
    ],
)
def test_bad_declarations_fail_at_start(
    sqlite_url: str, settings: Settings, periodic: Periodic, message: str
) -> None:
    with TaskTable(sqlite_url, settings=settings) as tt, pytest.raises(InvalidInput, match=message):
        plan(tt, [periodic])


def test_cli_refuses_a_bad_file(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    bad = tmp_path / "p.toml"
    bad.write_text('[[periodic]]\nname = "n"\ncron = "every day"\nhandler = "x:Y"\n')
    result = subprocess.run(
        [TASKTABLE, "--db", f"sqlite:///{tmp_path}/t.db", "worker", "--periodic", str(bad)],
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "five fields" in result.stderr
