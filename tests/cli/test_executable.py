"""A few commands through the installed ``tasktable`` executable, exactly as a user runs it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.cli import ECHO, Result, run_tasktable, snapshot

Tt = Callable[..., Result]


@pytest.fixture
def tt(subprocess_env: dict[str, str], tmp_path: Path) -> Tt:
    def run(*args: str, **env: str) -> Result:
        return run_tasktable(args, {**subprocess_env, **env}, cwd=tmp_path)

    return run


def test_enqueue_list_show_through_the_executable(tt: Tt, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/tasks.sqlite3"
    added = tt("enqueue", ECHO, "--args", '{"order_ids": [1]}', TASKTABLE_DATABASE_URL=url)
    assert added.code == 0, added.err
    assert added.err == ""

    listed = tt("list", "--json", "--db", url)
    shown = tt("--db", url, "show", added.out.strip(), "--json")

    assert [t["id"] for t in listed.json()["tasks"]] == [int(added.out)]
    assert shown.json()["args"] == {"order_ids": [1]}


def test_bad_input_through_the_executable(tt: Tt, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/tasks.sqlite3"
    assert tt("migrate", "--db", url).code == 0
    before = snapshot(url)

    bad_json = tt("enqueue", ECHO, "--args", "{oops", "--db", url)
    not_allowed = tt(
        "enqueue",
        "tests.support.canary:Canary",
        "--db",
        url,
        TASKTABLE_HANDLERS="tests.support.handlers:*",
        TASKTABLE_CANARY_MARKER=str(tmp_path / "imported"),
    )
    unknown = tt("show", "12345", "--db", url)

    assert bad_json.code == 1
    assert bad_json.error_line().startswith("Error: Args are not valid JSON")
    assert "TASKTABLE_HANDLERS" in not_allowed.error_line()
    assert not (tmp_path / "imported").exists()
    assert unknown.error_line() == "Error: No task with id 12345."
    assert snapshot(url) == before


def test_unreachable_database_through_the_executable(tt: Tt) -> None:
    result = tt("list", "--db", "postgresql://postgres:pw@127.0.0.1:1/tasks")
    line = result.error_line()
    assert line.startswith("Error: Cannot connect to the database at postgresql://postgres:***@")


def test_verbose_shows_the_traceback_through_the_executable(tt: Tt) -> None:
    result = tt("enqueue", ECHO, "--args", "[", "-v")
    assert result.code == 1
    assert "Traceback (most recent call last):" in result.err
    assert result.err.strip().splitlines()[-1].startswith("Error: Args are not valid JSON")


def test_version_and_help(tt: Tt) -> None:
    version = tt("--version")
    assert version.code == 0 and version.out.startswith("tasktable, version ")
    usage = tt("enqueue")  # HANDLER missing: a usage error, exit 2
    assert usage.code == 2
    assert "Missing argument 'HANDLER'" in usage.err
