"""Storage of users, API tokens and failed logins (the tables of migration 0002).

Kept apart from :mod:`tasktable.storage.sql`: the identity service in
:mod:`tasktable.auth` is its only client. Secrets never reach this module in
clear: it stores and looks up password hashes and token digests only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy import exc as sa_exc

from .engine import wrap_db_errors
from .schema import login_failure_table, token_table, user_table
from .sql import SQLStorage
from .types import utcnow

U = user_table.c
K = token_table.c
L = login_failure_table.c

#: A token's last use is written at most this often (seconds): reads stay reads.
TOKEN_TOUCH_INTERVAL = 60.0


@dataclass(frozen=True, kw_only=True)
class UserRecord:
    id: int
    name: str
    role: str
    password_hash: str
    created_at: datetime
    last_login_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class TokenRecord:
    id: int
    name: str
    role: str
    token_hash: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None


def _user(row: Any) -> UserRecord:
    return UserRecord(
        id=int(row.id),
        name=row.name,
        role=row.role,
        password_hash=row.password_hash,
        created_at=row.created_at,
        last_login_at=row.last_login_at,
    )


def _token(row: Any) -> TokenRecord:
    return TokenRecord(
        id=int(row.id),
        name=row.name,
        role=row.role,
        token_hash=row.token_hash,
        prefix=row.prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
    )


class _NameTaken(Exception):
    """A unique name (of a user or token) is already in the table."""


class IdentityStore:
    """Users, tokens and login failures in the task table's database."""

    def __init__(self, storage: SQLStorage) -> None:
        self._url = storage.url
        self._engine = storage.engine

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with wrap_db_errors(self._url):
            try:
                with self._engine.begin() as conn:
                    yield conn
            except sa_exc.IntegrityError as exc:  # a taken name: not a database failure
                raise _NameTaken from exc

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with (
            wrap_db_errors(self._url),
            self._engine.connect().execution_options(tasktable_begin="DEFERRED") as conn,
        ):
            yield conn

    # -- users --------------------------------------------------------------------
    def insert_user(self, name: str, role: str, password_hash: str) -> UserRecord | None:
        """Add a user; None when the name is taken. One transaction."""
        try:
            with self._write() as conn:
                conn.execute(
                    insert(user_table).values(
                        name=name, role=role, password_hash=password_hash, created_at=utcnow()
                    )
                )
                row = conn.execute(select(user_table).where(U.name == name)).one()
                return _user(row)
        except _NameTaken:
            return None

    def get_user(self, name: str) -> UserRecord | None:
        with self._read() as conn:
            row = conn.execute(select(user_table).where(U.name == name)).first()
        return _user(row) if row is not None else None

    def list_users(self) -> list[UserRecord]:
        with self._read() as conn:
            return [_user(r) for r in conn.execute(select(user_table).order_by(U.name))]

    def delete_user(self, name: str) -> bool:
        with self._write() as conn:
            return bool(conn.execute(delete(user_table).where(U.name == name)).rowcount)

    def update_user(self, name: str, **values: Any) -> bool:
        """Set ``role`` and/or ``password_hash`` of a user; False when there is none."""
        with self._write() as conn:
            return bool(
                conn.execute(update(user_table).where(U.name == name).values(**values)).rowcount
            )

    def touch_user(self, user_id: int) -> None:
        with self._write() as conn:
            conn.execute(update(user_table).where(U.id == user_id).values(last_login_at=utcnow()))

    # -- tokens -------------------------------------------------------------------
    def insert_token(
        self, name: str, role: str, token_hash: str, prefix: str
    ) -> TokenRecord | None:
        """Add a token; None when the name is taken. One transaction."""
        try:
            with self._write() as conn:
                conn.execute(
                    insert(token_table).values(
                        name=name,
                        role=role,
                        token_hash=token_hash,
                        prefix=prefix,
                        created_at=utcnow(),
                    )
                )
                row = conn.execute(select(token_table).where(K.name == name)).one()
                return _token(row)
        except _NameTaken:
            return None

    def token_by_hash(self, token_hash: str) -> TokenRecord | None:
        with self._read() as conn:
            row = conn.execute(select(token_table).where(K.token_hash == token_hash)).first()
        return _token(row) if row is not None else None

    def list_tokens(self) -> list[TokenRecord]:
        with self._read() as conn:
            return [_token(r) for r in conn.execute(select(token_table).order_by(K.name))]

    def delete_token(self, name: str) -> bool:
        with self._write() as conn:
            return bool(conn.execute(delete(token_table).where(K.name == name)).rowcount)

    def touch_token(self, token_id: int) -> None:
        """Stamp the token's last use, unless it was stamped in the last minute."""
        with self._write() as conn:
            conn.execute(
                update(token_table)
                .where(
                    K.id == token_id,
                    K.last_used_at.is_(None) | (K.last_used_at < utcnow(-TOKEN_TOUCH_INTERVAL)),
                )
                .values(last_used_at=utcnow())
            )

    def count_principals(self) -> int:
        """How many users and tokens exist together."""
        with self._read() as conn:
            users = conn.execute(select(func.count()).select_from(user_table)).scalar()
            tokens = conn.execute(select(func.count()).select_from(token_table)).scalar()
        return int(users or 0) + int(tokens or 0)

    # -- failed logins --------------------------------------------------------------
    def count_failures(self, subjects: Sequence[str], window: float) -> dict[str, int]:
        """Failures of each subject in the last ``window`` seconds (database clock)."""
        with self._read() as conn:
            rows = conn.execute(
                select(L.subject, func.count())
                .where(L.subject.in_(list(subjects)), L.failed_at >= utcnow(-window))
                .group_by(L.subject)
            ).all()
        found = {str(subject): int(count) for subject, count in rows}
        return {s: found.get(s, 0) for s in subjects}

    def add_failures(self, subjects: Sequence[str], keep: float) -> None:
        """Record one failure for each subject; forget failures older than ``keep`` seconds."""
        with self._write() as conn:
            conn.execute(delete(login_failure_table).where(L.failed_at < utcnow(-keep)))
            for subject in subjects:
                conn.execute(
                    insert(login_failure_table).values(subject=subject, failed_at=utcnow())
                )

    def clear_failures(self, subject: str) -> None:
        with self._write() as conn:
            conn.execute(delete(login_failure_table).where(L.subject == subject))
