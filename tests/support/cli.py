"""Helpers for tests that drive the CLI: run it, wait on conditions, fingerprint a database."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parent.parent.parent
#: The real console script, as a user runs it.
TASKTABLE = str(Path(sys.executable).with_name("tasktable"))

ECHO = "tests.support.handlers:Echo"
T = TypeVar("T")


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def error_line(self) -> str:
        """The one ``Error: ...`` sentence a failed command must print, and nothing else."""
        assert self.code != 0, f"expected a failure, got exit 0 with {self.out!r}"
        assert "Traceback" not in self.err, self.err
        lines = self.err.strip().splitlines()
        assert len(lines) == 1, f"expected one line on stderr, got {self.err!r}"
        assert lines[0].startswith("Error: "), lines[0]
        assert lines[0].endswith("."), lines[0]
        return lines[0]


def run_tasktable(
    args: Sequence[str],
    env: Mapping[str, str],
    *,
    cwd: Path,
    timeout: float = 60,
) -> Result:
    """Run the real ``tasktable`` executable and wait for it."""
    proc = subprocess.run(
        [TASKTABLE, *args],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def wait_for(
    predicate: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.05, what: str = ""
) -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def snapshot(url: str) -> dict[str, tuple[int, str]]:
    """Every tasktable table of the database: (row count, sha256 of all rows).

    Equal snapshots before and after a command prove it wrote and changed nothing.
    Tables are listed too, so a command that created a schema shows up as well.
    """
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            names = sorted(n for n in inspect(conn).get_table_names() if n.startswith("tasktable"))
            state: dict[str, tuple[int, str]] = {}
            for name in names:
                rows = conn.execute(text(f"SELECT * FROM {name}")).all()
                lines = sorted(repr(tuple(row)) for row in rows)
                digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()
                state[name] = (len(rows), digest)
            return state
    finally:
        engine.dispose()
