"""Shared fixtures: a fresh database per test on SQLite, PostgreSQL and MariaDB.

Server tests skip with a reason when the server is absent, except under
``TASKTABLE_REQUIRE_SERVICES=1`` where an unreachable server fails the run.
Each server test gets its own database (``tt_<random>``), dropped afterwards,
so tests are isolated and several runs can share one server.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, make_url, text

from tasktable import TaskTable
from tasktable.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get(
    "TASKTABLE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
MYSQL_ADMIN_URL = os.environ.get(
    "TASKTABLE_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"
)
REQUIRE_SERVICES = os.environ.get("TASKTABLE_REQUIRE_SERVICES") == "1"
BACKENDS = ("sqlite", "postgresql", "mariadb")

_reachable: dict[str, str | None] = {}


def _check(name: str, url: str) -> str | None:
    """None when the server answers, else the reason."""
    if name not in _reachable:
        try:
            engine = create_engine(url, connect_args={"connect_timeout": 3})
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            engine.dispose()
            _reachable[name] = None
        except Exception as exc:
            _reachable[name] = f"{name} at {url} is not reachable: {str(exc).splitlines()[0]}"
    return _reachable[name]


def require_server(name: str) -> None:
    url = PG_ADMIN_URL if name == "postgresql" else MYSQL_ADMIN_URL
    reason = _check(name, url)
    if reason is None:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"TASKTABLE_REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/tasktable.sqlite3"


@pytest.fixture
def postgresql_url() -> Iterator[str]:
    require_server("postgresql")
    name = f"tt_{secrets.token_hex(6)}"
    # pre-ping: a server restarted by a db_restart test must not break the teardown
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    require_server("mariadb")
    name = f"tt_{secrets.token_hex(6)}"
    admin = create_engine(MYSQL_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    url = make_url(MYSQL_ADMIN_URL).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest) -> str:
    """An empty database (no schema yet) on each backend in turn."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
def backend(db_url: str) -> str:
    return make_url(db_url).get_backend_name()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Short, test-friendly settings (no allowlist, logs under tmp_path)."""
    return Settings(
        log_file=str(tmp_path / "log" / "background_task.log"),
    )


@pytest.fixture
def table(db_url: str, settings: Settings) -> Iterator[TaskTable]:
    """A migrated TaskTable on each backend in turn."""
    tt = TaskTable(db_url, settings=settings)
    tt.migrate()
    try:
        yield tt
    finally:
        tt.close()


@pytest.fixture
def subprocess_env(tmp_path: Path) -> dict[str, str]:
    """Environment for CLI and worker subprocesses: test handlers importable, no stray config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTABLE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["TASKTABLE_LOG_FILE"] = str(tmp_path / "log" / "background_task.log")
    env["PYTHONUNBUFFERED"] = "1"
    return env


CHROMIUM = Path(os.environ.get("TASKTABLE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright, one for the whole session.

    Playwright's sync API keeps an event loop running while it is open, so a
    second ``sync_playwright()`` in the same session fails: every browser test
    shares this one (new contexts per test keep them isolated).
    """
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install chromium; make install installs it)"
        if REQUIRE_SERVICES:
            pytest.fail(f"TASKTABLE_REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the database-restart scenarios last: they restart the shared servers,
    which session-scoped fixtures of other suites (servers, admin connections) use."""
    items.sort(key=lambda item: item.get_closest_marker("db_restart") is not None)
