"""Enqueue inside the caller's own SQLAlchemy transaction (``connection=``).

Rolled back, the task is gone; until the commit, nobody else sees it; once
committed, a worker (a real ``tasktable worker`` process) runs it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from tasktable import TaskStatus, TaskTable
from tasktable.settings import Settings
from tasktable.storage.engine import parse_url

TASKTABLE = str(Path(sys.executable).parent / "tasktable")
ECHO = "tests.support.handlers:Echo"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest) -> str:
    value: str = request.getfixturevalue(f"{request.param}_url")
    return value


@pytest.fixture
def table(url: str, settings: Settings) -> Iterator[TaskTable]:
    tt = TaskTable(url, settings=settings)
    tt.migrate()
    yield tt
    tt.close()


@pytest.fixture
def app_engine(url: str) -> Iterator[Engine]:
    """The application's own engine on the same database (as Flask-SQLAlchemy would make)."""
    engine = create_engine(parse_url(url))
    yield engine
    engine.dispose()


def run_worker(url: str, env: dict[str, str]) -> None:
    done = subprocess.run(
        [TASKTABLE, "--db", url, "worker", "--burst", "--slots", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_rolled_back_transaction_leaves_no_task(table: TaskTable, app_engine: Engine) -> None:
    with app_engine.connect() as conn:
        tx = conn.begin()
        task = table.enqueue(ECHO, {"n": 1}, connection=conn)
        assert task.id > 0 and task.status is TaskStatus.PENDING
        tx.rollback()
    assert table.count() == 0


def test_commit_makes_it_visible_to_a_worker(
    table: TaskTable, app_engine: Engine, url: str, subprocess_env: dict[str, str]
) -> None:
    with app_engine.begin() as conn:
        conn.execute(text("CREATE TABLE shop_order (id INTEGER PRIMARY KEY, status TEXT)"))
    with app_engine.connect() as conn, conn.begin():
        conn.execute(text("INSERT INTO shop_order (id, status) VALUES (1, 'complete')"))
        task = table.enqueue(ECHO, {"order_id": 1}, connection=conn)
        assert table.count() == 0  # not committed: invisible to everyone else
    assert table.get(task.id).status is TaskStatus.PENDING
    run_worker(url, subprocess_env)
    assert table.get(task.id).status is TaskStatus.SUCCESS


def test_many_at_once_and_an_orm_session(table: TaskTable, app_engine: Engine) -> None:
    with Session(app_engine) as session, session.begin():
        table.enqueue_many(
            [{"handler": ECHO, "args": {"n": n}} for n in range(3)],
            connection=session.connection(),
        )
        session.rollback()
    assert table.count() == 0
    with Session(app_engine) as session, session.begin():
        table.enqueue_many(
            [{"handler": ECHO, "args": {"n": n}} for n in range(3)],
            connection=session.connection(),
        )
    assert table.count() == 3
