"""Database restart: PostgreSQL and MariaDB restarted under running workers.

Marked ``db_restart``: it restarts the shared server, so any other test
running against that server at the same moment fails. It runs in ``make
test`` (tests run one at a time there); run it alone elsewhere
(``pytest -m db_restart``). The server is always brought back up.
"""

from __future__ import annotations

import os
import random
import secrets
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, make_url, text

from tests.conftest import MYSQL_ADMIN_URL, PG_ADMIN_URL, require_server

from .conftest import FULL, Cluster, size, wait_for, work_items

pytestmark = [pytest.mark.reliability, pytest.mark.db_restart, pytest.mark.services]

SLOTS = 5


@pytest.fixture(params=["postgresql", "mariadb"])
def db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh server database (overrides the three-backend fixture); its admin engine
    checks connections before use, since the server restarts under it."""
    server = request.param
    require_server(server)
    admin_url = PG_ADMIN_URL if server == "postgresql" else MYSQL_ADMIN_URL
    name = f"tt_{secrets.token_hex(6)}"
    quote = '"' if server == "postgresql" else "`"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {quote}{name}{quote}"))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        force = " WITH (FORCE)" if server == "postgresql" else ""
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {quote}{name}{quote}{force}"))
        admin.dispose()


def _run(*cmd: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def _pg_version() -> str:
    return sorted(os.listdir("/etc/postgresql"))[-1]


def pg_up() -> bool:
    return _run("pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q", timeout=10).returncode == 0


def mariadb_up() -> bool:
    return (
        _run("mysqladmin", "-uroot", "-h127.0.0.1", "ping", "--silent", timeout=10).returncode == 0
    )


def restart_postgresql() -> None:
    result = _run("pg_ctlcluster", "--skip-systemctl-redirect", _pg_version(), "main", "restart")
    assert result.returncode == 0, result.stderr


def start_postgresql() -> None:
    if not pg_up():
        _run("pg_ctlcluster", "--skip-systemctl-redirect", _pg_version(), "main", "start")


def restart_mariadb() -> None:
    result = _run("mysqladmin", "-uroot", "shutdown")
    assert result.returncode == 0, result.stderr
    wait_for(lambda: not mariadb_up(), 60, "MariaDB stopped")
    start_mariadb()


def start_mariadb() -> None:
    if not mariadb_up():
        _run(
            "start-stop-daemon",
            "--start",
            "--oknodo",
            "--background",
            "--exec",
            "/usr/sbin/mariadbd",
        )


RESTART: dict[str, tuple[Callable[[], None], Callable[[], None], Callable[[], bool]]] = {
    "postgresql": (restart_postgresql, start_postgresql, pg_up),
    "mysql": (restart_mariadb, start_mariadb, mariadb_up),
    "mariadb": (restart_mariadb, start_mariadb, mariadb_up),
}


@pytest.mark.timeout(600 if FULL else 300)
def test_database_restart(cluster: Cluster, rng: random.Random) -> None:
    restart, start, is_up = RESTART[cluster.dialect]
    count = size(1000, 3000)
    restarts = size(1, 3)
    ids = cluster.enqueue(work_items(count, rng, 20, 80))
    workers = [cluster.start("--slots", str(SLOTS)) for _ in range(2)]
    back_times: list[datetime] = []
    try:
        for n in range(restarts):
            wait_for(
                lambda n=n: len(cluster.starts()) >= count * (n + 1) // (restarts + 2),  # type: ignore[misc]
                120,
                "tasks running before the restart",
            )
            restart()
            wait_for(is_up, 60, "the database is back")
            back_times.append(datetime.now(UTC))
            # Claims resume within 10 s of the database answering again.
            resumed = wait_for(
                lambda back=back_times[-1]: _claimed_since(cluster, back),  # type: ignore[misc]
                30,
                "a claim after the restart",
                interval=0.1,
            )
            delay = (resumed - back_times[-1]).total_seconds()
            assert delay <= 10.0, f"claims resumed {delay:.1f}s after the database came back"
    finally:
        start()
        wait_for(is_up, 60, "the database is up again")
    cluster.wait_all_final(timeout=300 if FULL else 150)
    assert all(w.alive() for w in workers), "a worker died with the database"
    assert set(cluster.stop_all().values()) == {0}
    assert cluster.by_status() == {"success": count}
    starts = cluster.starts()
    assert set(starts) == set(ids)
    logs = cluster.logs()
    assert "reachable again" in logs


def _claimed_since(cluster: Cluster, moment: datetime) -> datetime | None:
    """The first claim after ``moment`` (by the database clock, on this same host)."""
    when = moment if cluster.dialect == "postgresql" else moment.replace(tzinfo=None)
    try:
        first = cluster.scalar(
            "SELECT MIN(executed_at) FROM tasktable_task WHERE executed_at > :m", m=when
        )
    except Exception:  # the test's own connection may still be reconnecting
        return None
    if first is None:
        return None
    return first if first.tzinfo else first.replace(tzinfo=UTC)
