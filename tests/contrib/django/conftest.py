"""A real small Django project (``tests/contrib/django_project``) on SQLite, PostgreSQL
and MariaDB.

Django is configured once per test process, so the databases are per session:
a SQLite file (alias ``default``) and, when the server answers, a fresh
PostgreSQL database (alias ``pg``) and a fresh MariaDB database (alias
``mariadb``, through Django's MySQL backend), dropped at the end. Each test
starts from empty tables.
The code of docs/django.md is written out as the package ``myshop`` first.

Without Django's Tasks framework (Django 6, or Django 4.2+ with django-tasks)
the test modules skip, saying so.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from tests.conftest import MYSQL_ADMIN_URL, PG_ADMIN_URL, _check, require_server
from tests.contrib.docs_code import write_files

SETTINGS = "tests.contrib.django_project.settings"
HAVE_TASKS = find_spec("django") is not None and (
    find_spec("django_tasks") is not None or find_spec("django.tasks") is not None
)

SESSION_DIR = Path(tempfile.mkdtemp(prefix="tasktable-django-"))
atexit.register(shutil.rmtree, SESSION_DIR, ignore_errors=True)
PG_NAME = f"tt_dj_{secrets.token_hex(5)}"
PG_URL = make_url(PG_ADMIN_URL).set(database=PG_NAME).render_as_string(hide_password=False)
MYSQL_NAME = f"tt_dj_{secrets.token_hex(5)}"
MYSQL_URL = make_url(MYSQL_ADMIN_URL).set(database=MYSQL_NAME).render_as_string(hide_password=False)

ENV = {
    "DJANGO_SETTINGS_MODULE": SETTINGS,
    "TASKTABLE_TEST_DJANGO_SQLITE": str(SESSION_DIR / "django.sqlite3"),
    "TASKTABLE_TEST_DJANGO_SEPARATE": f"sqlite:///{SESSION_DIR}/separate.sqlite3",
    "TASKTABLE_TEST_DJANGO_MAIL": str(SESSION_DIR / "mail"),
}
if _check("postgresql", PG_ADMIN_URL) is None:
    ENV["TASKTABLE_TEST_DJANGO_PG"] = PG_URL
if _check("mariadb", MYSQL_ADMIN_URL) is None:
    ENV["TASKTABLE_TEST_DJANGO_MYSQL"] = MYSQL_URL
DOCS_DIR = SESSION_DIR / "docs"


def _setup_django() -> None:
    from tasktable.contrib.django._compat import PACKAGE

    backport = {"from django.tasks import": "from django_tasks import"}
    write_files("docs/django.md", DOCS_DIR, backport if PACKAGE == "django_tasks" else None)
    sys.path.insert(0, str(DOCS_DIR))
    os.environ.update(ENV)
    import django

    django.setup()


if HAVE_TASKS:
    _setup_django()

TABLES = ("tasktable_file", "tasktable_task", "tasktable_worker", "notes_note", "auth_user")


@pytest.fixture(scope="session")
def sqlite_database() -> str:
    from django.core.management import call_command

    call_command("migrate", database="default", verbosity=0)
    return "default"


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    require_server("postgresql")
    from django.core.management import call_command
    from django.db import connections

    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{PG_NAME}"'))
    try:
        call_command("migrate", database="pg", verbosity=0)
        yield "pg"
    finally:
        connections["pg"].close()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def mariadb_database() -> Iterator[str]:
    require_server("mariadb")
    from django.core.management import call_command
    from django.db import connections

    admin = create_engine(MYSQL_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE `{MYSQL_NAME}` CHARACTER SET utf8mb4"))
    try:
        call_command("migrate", database="mariadb", verbosity=0)
        yield "mariadb"
    finally:
        connections["mariadb"].close()
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{MYSQL_NAME}`"))
        admin.dispose()


FIXTURES = {"default": "sqlite_database", "pg": "pg_database", "mariadb": "mariadb_database"}


def clean(alias: str) -> None:
    from django.db import connections

    with connections[alias].cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"DELETE FROM {table}")


@pytest.fixture(params=list(FIXTURES), ids=["sqlite", "postgresql", "mariadb"])
def alias(request: pytest.FixtureRequest) -> Iterator[str]:
    """The Django database alias (and TASKS entry) of each backend in turn, emptied."""
    name: str = request.getfixturevalue(FIXTURES[request.param])
    clean(name)
    yield name
    clean(name)


@pytest.fixture
def django_env(subprocess_env: dict[str, str]) -> dict[str, str]:
    """The environment of worker subprocesses: the same settings and databases."""
    env = dict(subprocess_env)
    env.update({k: v for k, v in ENV.items()})
    env["PYTHONPATH"] = os.pathsep.join([str(DOCS_DIR), env["PYTHONPATH"]])
    env["TASKTABLE_POLL_INTERVAL"] = "100ms"
    return env


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def tasktable_django(django_env: dict[str, str]) -> Callable[..., Run]:
    """``tasktable_django("worker", "--burst", backend="pg")``: the CLI module in a subprocess."""

    def run(*args: str, backend: str = "default", extra_env: dict[str, str] | None = None) -> Run:
        command = [sys.executable, "-m", "tasktable.contrib.django", "--backend", backend, *args]
        done = subprocess.run(
            command,
            env={**django_env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return Run(done.returncode, done.stdout, done.stderr)

    return run


@pytest.fixture
def run_worker(tasktable_django: Callable[..., Run]) -> Callable[..., Run]:
    """A burst worker on a backend: runs what is due, then exits; it must exit 0.

    Two slots unless the test says otherwise: each slot is a process to start."""

    def run(alias: str, *args: str, extra_env: dict[str, str] | None = None) -> Run:
        slots = () if "--slots" in args else ("--slots", "2")
        done: Run = tasktable_django(
            "worker", "--burst", *slots, *args, backend=alias, extra_env=extra_env
        )
        assert done.code == 0, done.stderr
        return done

    return run
