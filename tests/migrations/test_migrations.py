"""Migrations: a migrated database equals the metadata; idempotent; safe to race."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Dialect, Engine, create_engine, delete, insert, inspect, select

from tasktable import TaskTable
from tasktable.errors import DatabaseError, SchemaMissing
from tasktable.settings import Settings
from tasktable.storage.migrate import (
    check_schema,
    dialect_folder,
    load_migrations,
    migrate,
    unsupported_server,
)
from tasktable.storage.schema import metadata, schema_table
from tasktable.storage.sql import SQLStorage
from tasktable.storage.types import utcnow

from .schema_shape import shape

ECHO = "tests.support.handlers:Echo"


def versions(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return list(
            conn.execute(select(schema_table.c.version).order_by(schema_table.c.version)).scalars()
        )


def known_versions(engine: Engine) -> list[int]:
    return [m.version for m in load_migrations(dialect_folder(engine))]


@pytest.fixture
def migrated(db_url: str) -> Iterator[SQLStorage]:
    storage = SQLStorage(db_url)
    storage.migrate()
    yield storage
    storage.dispose()


def test_a_migrated_schema_equals_the_metadata(migrated: SQLStorage, twin_url: str) -> None:
    fresh = create_engine(twin_url)
    try:
        metadata.create_all(fresh)
        expected, actual = shape(fresh), shape(migrated.engine)
    finally:
        fresh.dispose()
    assert sorted(actual) == sorted(expected) == sorted(metadata.tables)
    for table in expected:
        assert actual[table] == expected[table], f"{table}: the migrations and schema.py disagree"


def test_every_dialect_has_the_same_migration_numbers() -> None:
    numbers = {
        folder: [m.version for m in load_migrations(folder)]
        for folder in ("sqlite", "postgresql", "mysql")
    }
    assert numbers["sqlite"] == numbers["postgresql"] == numbers["mysql"]
    assert numbers["sqlite"] == list(range(1, len(numbers["sqlite"]) + 1))


def test_migrate_records_every_version_and_is_idempotent(migrated: SQLStorage) -> None:
    assert versions(migrated.engine) == known_versions(migrated.engine)
    before = shape(migrated.engine)
    assert migrated.migrate() == []
    assert migrated.migrate() == []
    assert versions(migrated.engine) == known_versions(migrated.engine)
    assert shape(migrated.engine) == before
    migrated.check_schema()


def test_migrate_keeps_the_data(db_url: str, settings: Settings) -> None:
    with TaskTable(db_url, settings=settings) as table:
        table.migrate()
        task = table.enqueue(ECHO, {"keep": True})
        assert table.migrate() == []
        assert table.get(task.id).args == {"keep": True}


def test_a_fresh_migrate_applies_every_file_in_order(db_url: str) -> None:
    storage = SQLStorage(db_url)
    try:
        assert storage.migrate() == known_versions(storage.engine)
    finally:
        storage.dispose()


@pytest.mark.parametrize("racers", [2, 4])
def test_concurrent_migrations_on_a_fresh_database_all_succeed(db_url: str, racers: int) -> None:
    barrier = threading.Barrier(racers)
    applied: list[list[int]] = []
    errors: list[BaseException] = []

    def run() -> None:
        storage = SQLStorage(db_url)
        try:
            with storage.engine.connect():
                pass  # connected before the race
            barrier.wait(timeout=30)
            applied.append(storage.migrate())
        except BaseException as exc:
            errors.append(exc)
        finally:
            storage.dispose()

    threads = [threading.Thread(target=run) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    check = SQLStorage(db_url)
    try:
        every = known_versions(check.engine)
        assert sorted(v for run in applied for v in run) == every, "each version applied once"
        assert versions(check.engine) == every
        check.check_schema()
    finally:
        check.dispose()


# -- a missing or different schema --------------------------------------------------


@pytest.fixture
def server_url(db_url: str, backend: str) -> str:
    if backend == "sqlite":
        pytest.skip("the SQLite default migrates itself on first use")
    return db_url


def test_an_unmigrated_server_database_raises_schema_missing_and_writes_nothing(
    server_url: str, settings: Settings
) -> None:
    table = TaskTable(server_url, settings=settings)
    try:
        for action in (
            lambda: table.enqueue(ECHO),
            lambda: table.list(),
            lambda: table.get(1),
            lambda: table.stats(),
        ):
            with pytest.raises(SchemaMissing) as caught:
                action()
            message = str(caught.value)
            assert "has no tasktable schema" in message
            assert "run: tasktable migrate" in message
    finally:
        table.close()
    engine = create_engine(server_url)
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


def test_a_missing_later_migration_is_named(migrated: SQLStorage) -> None:
    newest = known_versions(migrated.engine)[-1]
    with migrated.engine.begin() as conn:
        conn.execute(delete(schema_table).where(schema_table.c.version == newest))
    with pytest.raises(
        SchemaMissing, match=rf"lacks migration\(s\) {newest}; run: tasktable migrate"
    ):
        migrated.check_schema()


def test_a_schema_newer_than_the_code_says_to_upgrade(migrated: SQLStorage) -> None:
    with migrated.engine.begin() as conn:
        conn.execute(insert(schema_table).values(version=9999, name="future", applied_at=utcnow()))
    with pytest.raises(SchemaMissing, match=r"9999.*upgrade tasktable"):
        migrated.check_schema()


def test_auto_migrate_false_on_sqlite_also_refuses_an_empty_file(
    tmp_path: Path, settings: Settings
) -> None:
    table = TaskTable(f"sqlite:///{tmp_path}/empty.sqlite3", settings=settings, auto_migrate=False)
    try:
        with pytest.raises(SchemaMissing, match="tasktable migrate"):
            table.count()
    finally:
        table.close()


# -- the SQLite default ---------------------------------------------------------------


def test_sqlite_creates_its_folder_file_and_schema_on_first_use(
    tmp_path: Path, settings: Settings
) -> None:
    path = tmp_path / "deep" / "er" / "tasks.sqlite3"
    assert not path.parent.exists()
    with TaskTable(f"sqlite:///{path}", settings=settings) as table:
        task = table.enqueue(ECHO)
        assert table.get(task.id).id == task.id
    assert path.is_file()
    engine = create_engine(f"sqlite:///{path}")
    try:
        assert versions(engine) == known_versions(engine)
    finally:
        engine.dispose()


def test_the_default_url_is_a_sqlite_file_under_var(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TASKTABLE_DATABASE_URL", raising=False)
    with TaskTable(settings=Settings(log_file=str(tmp_path / "log"))) as table:
        assert table.url == "sqlite:///var/tasktable.sqlite3"
        table.enqueue(ECHO)
        assert table.count() == 1
    assert (tmp_path / "var" / "tasktable.sqlite3").is_file()


def test_sqlite_uses_wal(tmp_path: Path, settings: Settings) -> None:
    with TaskTable(f"sqlite:///{tmp_path}/wal.sqlite3", settings=settings) as table:
        with table.storage.engine.connect() as conn:
            mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
        assert mode == "wal"


def _mysql_dialect(version: tuple[int, ...], *, mariadb: bool) -> Dialect:
    from sqlalchemy.dialects.mysql.pymysql import MySQLDialect_pymysql

    dialect = MySQLDialect_pymysql()
    dialect.server_version_info = version
    dialect.is_mariadb = mariadb
    return dialect


def test_mysql_and_old_mariadb_are_refused_with_the_reason() -> None:
    mysql = unsupported_server(_mysql_dialect((8, 0, 36), mariadb=False))
    assert mysql is not None and "MySQL 8.0.36 is not supported" in mysql
    assert "MariaDB 10.6 or newer" in mysql
    old = unsupported_server(_mysql_dialect((10, 5, 9), mariadb=True))
    assert old is not None and "MariaDB 10.5.9 is too old" in old and "SKIP LOCKED" in old
    assert unsupported_server(_mysql_dialect((10, 6, 0), mariadb=True)) is None
    assert unsupported_server(_mysql_dialect((11, 4, 2), mariadb=True)) is None


def test_an_unsupported_server_is_refused_before_anything_is_written(twin_url: str) -> None:
    engine = create_engine(twin_url)
    if engine.dialect.name not in ("mysql", "mariadb"):
        engine.dispose()
        pytest.skip("MariaDB/MySQL only: the other databases have no such check")
    try:
        with engine.connect():  # the dialect learns the server's version here
            pass
        assert unsupported_server(engine.dialect) is None  # the real server is supported
        engine.dialect.server_version_info = (10, 5, 9)  # as an older server would report
        with pytest.raises(DatabaseError, match=r"MariaDB 10\.5\.9 is too old"):
            migrate(engine)
        with pytest.raises(DatabaseError, match=r"MariaDB 10\.5\.9 is too old"):
            check_schema(engine, "the twin")
        assert not inspect(engine).has_table(schema_table.name)
    finally:
        engine.dispose()


def test_the_pending_index_is_partial_where_the_database_has_partial_indexes(
    migrated: SQLStorage, twin_url: str
) -> None:
    # schema.py sets the condition as the table is created (not as a dialect keyword:
    # that would import every dialect package); migrations write it in SQL.
    fresh = create_engine(twin_url)
    try:
        metadata.create_all(fresh)
        for engine in (fresh, migrated.engine):
            _, _, partial = shape(engine)["tasktable_task"]["indexes"]["ix_tasktable_task_pending"]
            assert partial == (engine.dialect.name in ("postgresql", "sqlite"))
    finally:
        fresh.dispose()
