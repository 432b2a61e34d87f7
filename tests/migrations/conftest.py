"""A second empty database beside ``db_url``, on the same backend."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from tests.conftest import MYSQL_ADMIN_URL, PG_ADMIN_URL


@pytest.fixture
def twin_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    backend = make_url(db_url).get_backend_name()
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path}/twin.sqlite3"
        return
    name = f"tt_{secrets.token_hex(6)}"
    admin_url = PG_ADMIN_URL if backend == "postgresql" else MYSQL_ADMIN_URL
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    if backend == "postgresql":
        create, drop = f'CREATE DATABASE "{name}"', f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    else:
        create = f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"
        drop = f"DROP DATABASE IF EXISTS `{name}`"
    with admin.connect() as conn:
        conn.execute(text(create))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(drop))
        admin.dispose()
