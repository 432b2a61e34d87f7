"""Database URLs: bad ones fail before any I/O, unreachable ones with one sentence."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from sqlalchemy import text

from tasktable import TaskTable
from tasktable.core.status import TaskStatus
from tasktable.core.task import Message, Task
from tasktable.errors import DatabaseError, InvalidInput
from tasktable.settings import Settings
from tasktable.storage.base import Outcome
from tasktable.worker.completer import Completer

from .helpers import ECHO, register, row_count

SUCCESS = Outcome(status=TaskStatus.SUCCESS, messages=(Message(text="done"),))


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("not a url", "Cannot parse database URL"),
        ("postgresql://user:s3cret@host:notaport/db", "Cannot parse database URL"),
        ("oracle://scott:tiger@localhost/orcl", "Unsupported database 'oracle'"),
        ("sqlite://", "in-memory SQLite"),
        ("sqlite:///:memory:", "in-memory SQLite"),
    ],
)
def test_bad_urls_fail_at_once(url: str, match: str, settings: Settings) -> None:
    with pytest.raises(InvalidInput, match=match) as caught:
        TaskTable(url, settings=settings).count()
    assert "s3cret" not in str(caught.value)
    assert "tiger" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://tt:s3cret@127.0.0.1:1/tasks",
        "mysql://tt:s3cret@127.0.0.1:1/tasks",
    ],
)
def test_an_unreachable_server_is_one_sentence_without_the_password(
    url: str, settings: Settings
) -> None:
    table = TaskTable(url, settings=settings)
    try:
        with pytest.raises(DatabaseError, match="Cannot connect to the database at") as caught:
            table.count()
    finally:
        table.close()
    message = str(caught.value)
    assert "s3cret" not in message
    assert "127.0.0.1:1" in message
    assert "\n" not in message


def test_dialect_aliases(settings: Settings, tmp_path: Path) -> None:
    from tasktable.storage.engine import parse_url

    assert parse_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert parse_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert parse_url("mysql://u@h/db").drivername == "mysql+pymysql"
    assert parse_url("mariadb://u@h/db").drivername == "mariadb+pymysql"
    assert parse_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"
    assert parse_url(f"sqlite:///{tmp_path}/x.db").drivername == "sqlite"


def test_many_tasks_in_one_enqueue(table: TaskTable) -> None:
    count = 2500  # past the 1000-row batches SQLAlchemy splits an executemany into
    tasks = table.enqueue_many([{"handler": ECHO, "args": {"n": n}} for n in range(count)])
    assert [t.args["n"] for t in tasks] == list(range(count))
    ids = [t.id for t in tasks]
    assert ids == sorted(ids) and len(set(ids)) == count
    assert row_count(table) == count


def kill_other_connections(table: TaskTable) -> int:
    """Terminate every connection to this test's database but the one asking."""
    with table.storage.engine.connect() as conn:
        if table.storage.dialect_name == "postgresql":
            sql = (
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return len(conn.execute(text(sql)).all())
        ids = conn.execute(
            text(
                "SELECT id FROM information_schema.processlist"
                " WHERE db = DATABASE() AND id <> CONNECTION_ID()"
            )
        ).scalars()
        killed = 0
        for pid in ids:
            with contextlib.suppress(Exception):  # it may be gone already
                conn.execute(text(f"KILL {int(pid)}"))
                killed += 1
        return killed


def test_the_worker_path_recovers_from_killed_connections(table: TaskTable) -> None:
    """Claims and outcomes skip the pool's pre-ping: a killed connection fails one
    statement at most, and the retry (as the claim loop and completer do) gets a new one."""
    if table.storage.dialect_name == "sqlite":
        pytest.skip("no server connection to kill")
    storage = table.storage
    for _ in range(3):
        table.enqueue(ECHO)
    worker = register(table)
    [first] = storage.claim(worker, (), 1, alive_within=30)
    assert kill_other_connections(table) >= 1
    completer = Completer(storage)
    assert completer.complete(first, SUCCESS) is True
    assert table.get(first.id).status is TaskStatus.SUCCESS
    assert kill_other_connections(table) >= 1
    claimed: list[Task] = []
    for _ in range(2):
        with contextlib.suppress(DatabaseError):
            claimed = storage.claim(worker, (), 5, alive_within=30)
            break
    assert len(claimed) == 2
    assert storage.finish_many([(t, SUCCESS) for t in claimed]) == [True, True]
    # The combined step (on PostgreSQL, the driver's own connection): one failure at most.
    table.enqueue(ECHO)
    [last] = storage.claim(worker, (), 1, alive_within=30)
    table.enqueue(ECHO)
    assert kill_other_connections(table) >= 1
    failures = 0
    for _ in range(3):
        try:
            oks, more = storage.finish_and_claim([(last, SUCCESS)], worker, (), 5, alive_within=30)
            break
        except DatabaseError:
            failures += 1
    assert failures <= 1 and oks == [True] and len(more) == 1
    assert storage.finish_many([(more[0], SUCCESS)]) == [True]
