"""In-process CLI tests: ``main(argv)`` with captured output, a clean environment per test."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tasktable import TaskTable
from tasktable.cli.main import main
from tests.support.cli import Result

Cli = Callable[..., Result]


@pytest.fixture(autouse=True)
def clean_cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No stray TASKTABLE_* settings, logs under tmp_path, the SQLite default under tmp_path,
    and whatever the CLI changed in this process (sys.path, logging, signals) put back."""
    for name in list(os.environ):
        if name.startswith("TASKTABLE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TASKTABLE_LOG_FILE", str(tmp_path / "log" / "background_task.log"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    logger = logging.getLogger("tasktable")
    level, propagate = logger.level, logger.propagate
    yield
    for sig, previous in handlers.items():
        signal.signal(sig, previous)
    for handler in list(logger.handlers):
        if getattr(handler, "_tasktable", False):
            logger.removeHandler(handler)
            handler.close()
    logger.setLevel(level)
    logger.propagate = propagate


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """``cli("list", "--json")`` runs ``main`` and returns (exit code, stdout, stderr)."""

    def run(*argv: str) -> Result:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def url(db_url: str, table: TaskTable) -> str:
    """A migrated database on each backend in turn (``table`` migrated it)."""
    return db_url
