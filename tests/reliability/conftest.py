"""The reliability suite's harness: real workers, real signals, a ledger, SQL invariants.

Each scenario starts ``tasktable worker`` processes (the real CLI) in their
own process groups, with short lease settings (heartbeat 1 s, dead_after 5 s),
and hurts them with real signals. The test handlers write every start and end
to a ledger table on their own connection, so the suite can count real runs
whatever the task table says; the invariants are checked in SQL afterwards.

Sizes: the CI size by default, the full size with ``TASKTABLE_FULL=1``
(``make test-full``). Every random choice comes from one seed, printed at the
start of each test (shown on failure); set ``TASKTABLE_SEED`` to replay it.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.engine import Engine

from tasktable import TaskTable
from tasktable.worker.completer import Completer
from tasktable.worker.slots import Mode, SlotPool

from .handlers import LEDGER_TABLE, ledger_ddl

FULL = os.environ.get("TASKTABLE_FULL") == "1"
TASKTABLE = str(Path(sys.executable).with_name("tasktable"))
H = "tests.reliability.handlers"
WORK = f"{H}:Work"

#: Short lease settings for every worker of the suite.
LEASE_ENV = {
    "TASKTABLE_HEARTBEAT": "1s",
    "TASKTABLE_DEAD_AFTER": "5s",
    "TASKTABLE_POLL_INTERVAL": "0.5s",
    "TASKTABLE_CANCEL_GRACE": "2s",
}
DEAD_AFTER = 5.0


def size(ci: int, full: int) -> int:
    return full if FULL else ci


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll ``predicate`` until it returns something true; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout:g}s")
        time.sleep(interval)


@pytest.fixture
def seed() -> int:
    value = int(os.environ.get("TASKTABLE_SEED") or random.randrange(1, 2**31))
    print(f"reliability seed {value} (replay with TASKTABLE_SEED={value})")
    return value


@pytest.fixture
def rng(seed: int) -> random.Random:
    return random.Random(seed)


@dataclass
class WorkerProcess:
    """One ``tasktable worker`` process, leader of its own process group."""

    name: str
    args: tuple[str, ...]
    popen: subprocess.Popen[bytes]
    log_file: Path
    started: float = field(default_factory=time.time)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int, *, group: bool = True) -> None:
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(self.pid, sig)
            else:
                os.kill(self.pid, sig)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout)

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""


class Cluster:
    """Workers on one database, the ledger, and the SQL the invariants need."""

    def __init__(self, url: str, table: TaskTable, tmp: Path, env: dict[str, str]) -> None:
        self.url = url
        self.table = table
        self.tmp = tmp
        self.dialect = make_url(url).get_backend_name()
        self.env = {
            **env,
            **LEASE_ENV,
            "TASKTABLE_DATABASE_URL": url,
            "RELIABILITY_LEDGER_URL": url,
        }
        args = {"timeout": 60} if self.dialect == "sqlite" else {}
        self.engine: Engine = create_engine(url, connect_args=args, pool_pre_ping=True)
        self.workers: list[WorkerProcess] = []
        self._count = 0
        with self.engine.begin() as conn:
            conn.execute(text(ledger_ddl(self.dialect)))

    # -- workers -------------------------------------------------------------------
    def start(self, *args: str, env: dict[str, str] | None = None) -> WorkerProcess:
        self._count += 1
        name = f"w{self._count}"
        log_file = self.tmp / f"{name}.log"
        worker_env = {**self.env, "TASKTABLE_LOG_FILE": str(log_file), **(env or {})}
        out = (self.tmp / f"{name}.out").open("wb")
        popen = subprocess.Popen(
            [TASKTABLE, "worker", *args],
            env=worker_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: signals reach it and its slots
        )
        out.close()
        worker = WorkerProcess(name=name, args=tuple(args), popen=popen, log_file=log_file)
        self.workers.append(worker)
        return worker

    def restart(self, worker: WorkerProcess) -> WorkerProcess:
        return self.start(*worker.args)

    def worker_ids(self, worker: WorkerProcess) -> list[str]:
        rows = self.query("SELECT id FROM tasktable_worker WHERE pid = :p", p=worker.pid)
        return [r[0] for r in rows]

    def wait_registered(self, worker: WorkerProcess, timeout: float = 30) -> str:
        ids = wait_for(lambda: self.worker_ids(worker), timeout, f"{worker.name} registered")
        return str(ids[0])

    def stop_all(self, timeout: float = 40) -> dict[str, int]:
        """SIGTERM every live worker; their exit codes."""
        codes = {}
        live = [w for w in self.workers if w.alive()]
        for w in live:
            w.signal(signal.SIGTERM, group=False)
        for w in live:
            try:
                codes[w.name] = w.wait(timeout)
            except subprocess.TimeoutExpired:
                codes[w.name] = -999
        return codes

    def close(self) -> None:
        for w in self.workers:
            if w.alive():
                w.signal(signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    w.wait(10)
            else:  # its slot processes die with it; make sure of it
                w.signal(signal.SIGKILL)
        self.engine.dispose()

    def logs(self) -> str:
        return "\n".join(w.log() for w in self.workers)

    # -- tasks and SQL -------------------------------------------------------------
    def enqueue(self, items: Sequence[dict[str, Any]]) -> list[int]:
        ids: list[int] = []
        for start in range(0, len(items), 500):
            ids += [t.id for t in self.table.enqueue_many(items[start : start + 500])]
        return ids

    def query(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), params).all())

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def by_status(self) -> dict[str, int]:
        rows = self.query("SELECT status, COUNT(*) FROM tasktable_task GROUP BY status")
        return {str(s): int(n) for s, n in rows}

    def unfinished(self) -> int:
        return int(
            self.scalar(
                "SELECT COUNT(*) FROM tasktable_task WHERE status IN ('pending', 'running')"
            )
        )

    def wait_all_final(self, timeout: float) -> None:
        wait_for(
            lambda: self.unfinished() == 0,
            timeout,
            f"every task finished (now {self.by_status()})",
            interval=0.5,
        )

    def starts(self) -> dict[int, int]:
        rows = self.query(
            f"SELECT task_id, COUNT(*) FROM {LEDGER_TABLE} WHERE event = 'start' GROUP BY task_id"
        )
        return {int(t): int(n) for t, n in rows}

    def running_of(self, worker_id: str) -> set[int]:
        rows = self.query(
            "SELECT id FROM tasktable_task WHERE status = 'running' AND worker = :w", w=worker_id
        )
        return {int(r[0]) for r in rows}

    def stale_writes(self) -> list[tuple[int, int, str]]:
        """Successful tasks whose last "done by" message is not from their last claim.

        The handler writes "done by <pid> attempt <n>" just before it returns; a
        write from an older claim landing over a newer one would leave a row whose
        attempts count is not the n of its final message.
        """
        bad = []
        cursor = None
        while True:
            page = self.table.list(status="success", limit=1000, cursor=cursor, sort="id")
            for task in page.tasks:
                done = [m.text for m in task.messages if m.text.startswith("done by ")]
                if not done or not done[-1].endswith(f" attempt {task.attempts}"):
                    bad.append((task.id, task.attempts, done[-1] if done else "-"))
            if page.next_cursor is None:
                return bad
            cursor = page.next_cursor


class RescueMonitor(threading.Thread):
    """Measures how long the tasks of each killed worker stay ``running`` under its id."""

    def __init__(self, cluster: Cluster) -> None:
        super().__init__(name="rescue-monitor", daemon=True)
        self.cluster = cluster
        self.lock = threading.Lock()
        self.checks: list[tuple[float, str, set[int]]] = []
        self.times: list[float] = []
        self.stuck: list[str] = []
        self.stop = threading.Event()

    def watch(self, killed_at: float, worker_id: str, lost: set[int]) -> None:
        with self.lock:
            self.checks.append((killed_at, worker_id, lost))

    def run(self) -> None:
        while not self.stop.wait(0.1):
            with self.lock:
                checks = list(self.checks)
            for check in checks:
                killed_at, worker_id, lost = check
                still = self.cluster.running_of(worker_id) & lost
                now = time.monotonic()
                if not still or now - killed_at > 60:
                    with self.lock:
                        self.checks.remove(check)
                        self.times.append(now - killed_at)
                        if still:
                            self.stuck.append(f"{worker_id}: {sorted(still)}")

    def finish(self, timeout: float) -> list[float]:
        wait_for(lambda: not self.checks, timeout, "every orphan rescued")
        self.stop.set()
        self.join(5)
        assert self.stuck == []
        return self.times


@pytest.fixture
def cluster(
    db_url: str, table: TaskTable, tmp_path: Path, subprocess_env: dict[str, str]
) -> Iterator[Cluster]:
    c = Cluster(db_url, table, tmp_path, subprocess_env)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def lite(sqlite_url: str, tmp_path: Path, subprocess_env: dict[str, str]) -> Iterator[Cluster]:
    """A cluster on SQLite only: for behaviour that is the worker's, not the database's."""
    from tasktable.settings import Settings

    table = TaskTable(sqlite_url, settings=Settings(log_file=str(tmp_path / "test.log")))
    table.migrate()
    c = Cluster(sqlite_url, table, tmp_path, subprocess_env)
    try:
        yield c
    finally:
        c.close()
        table.close()


def work_items(count: int, rng: random.Random, low_ms: int, high_ms: int) -> list[dict[str, Any]]:
    return [{"handler": WORK, "args": {"ms": rng.randint(low_ms, high_ms)}} for _ in range(count)]


def slot_pool(sqlite_url: str, mode: Mode) -> SlotPool:
    """Two slots on a migrated SQLite table, not started (for the pool's own rules)."""
    table = TaskTable(sqlite_url)
    table.migrate()
    return SlotPool(2, table.storage, table.settings, Completer(table.storage), mode=mode)
