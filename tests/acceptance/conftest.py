"""Acceptance tests: the real ``tasktable`` executable in subprocesses, as a user runs it."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest

from tasktable import TaskTable
from tests.support.cli import TASKTABLE, Result, run_tasktable

Tasktable = Callable[..., Result]
StartWorker = Callable[..., subprocess.Popen[str]]


@pytest.fixture
def env(subprocess_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The environment of every subprocess of a test (tests may add to it)."""
    env = dict(subprocess_env)
    env["TASKTABLE_DEMO_ORDERS"] = str(tmp_path / "orders.json")
    env["TASKTABLE_POLL_INTERVAL"] = "200ms"
    return env


@pytest.fixture
def tasktable(env: dict[str, str], tmp_path: Path) -> Tasktable:
    """``tasktable("enqueue", ...)`` runs the executable in tmp_path with ``env``."""

    def run(*args: str, timeout: float = 120, extra_env: dict[str, str] | None = None) -> Result:
        return run_tasktable(args, {**env, **(extra_env or {})}, cwd=tmp_path, timeout=timeout)

    return run


@pytest.fixture
def url(db_url: str, tasktable: Tasktable) -> str:
    """A database on each backend in turn, migrated through the CLI."""
    result = tasktable("migrate", "--db", db_url)
    assert result.code == 0, result.err
    return db_url


@pytest.fixture
def reader(url: str) -> Iterator[TaskTable]:
    """An in-process TaskTable on the same database, to read (and poll) what the CLI did."""
    table = TaskTable(url, auto_migrate=False)
    try:
        yield table
    finally:
        table.close()


@pytest.fixture
def start_worker(env: dict[str, str], tmp_path: Path) -> Iterator[StartWorker]:
    """Start ``tasktable worker ...`` in the background; any still running at the end are killed."""
    started: list[subprocess.Popen[str]] = []
    files: list[IO[str]] = []

    def start(*args: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        n = len(started)
        out = open(tmp_path / f"worker-{n}.out", "w")  # noqa: SIM115 - closed at teardown
        err = open(tmp_path / f"worker-{n}.err", "w")  # noqa: SIM115 - closed at teardown
        files.extend((out, err))
        proc = subprocess.Popen(
            [TASKTABLE, "worker", *args],
            env={**env, **(extra_env or {})},
            cwd=tmp_path,
            stdout=out,
            stderr=err,
            text=True,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
    for file in files:
        file.close()


def worker_log(tmp_path: Path, n: int = 0) -> str:
    """What worker number ``n`` wrote to stderr."""
    return (tmp_path / f"worker-{n}.err").read_text()
