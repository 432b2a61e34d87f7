"""Storage of dashboard sessions (the table of migration 0004).

The cookie secret never reaches this module: sessions are stored and found by
the SHA-256 of it. A session is valid only while its user exists, the user's
password hash still has the digest recorded at login, and it has not expired
by the database clock. :mod:`tasktable.auth.sessions` is its only client.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select

from .engine import wrap_db_errors
from .schema import session_table, user_table
from .sql import SQLStorage
from .types import utcnow

S = session_table.c
U = user_table.c


@dataclass(frozen=True, kw_only=True)
class SessionRecord:
    user_id: int
    user_name: str
    role: str
    password_hash: str
    credential: str


class SessionStore:
    """Sessions in the task table's database."""

    def __init__(self, storage: SQLStorage) -> None:
        self._url = storage.url
        self._engine = storage.engine

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with wrap_db_errors(self._url), self._engine.begin() as conn:
            yield conn

    def insert(self, id_hash: str, user_id: int, credential: str, lifetime: float) -> None:
        """Add a session valid for ``lifetime`` seconds; forget expired ones. One transaction."""
        with self._write() as conn:
            conn.execute(delete(session_table).where(S.expires_at < utcnow()))
            conn.execute(
                insert(session_table).values(
                    id_hash=id_hash,
                    user_id=user_id,
                    credential=credential,
                    created_at=utcnow(),
                    expires_at=utcnow(lifetime),
                )
            )

    def find(self, id_hash: str) -> SessionRecord | None:
        """The unexpired session with this digest and its user, or None."""
        stmt = (
            select(S.user_id, S.credential, U.name, U.role, U.password_hash)
            .join(user_table, U.id == S.user_id)
            .where(S.id_hash == id_hash, S.expires_at > utcnow())
        )
        with (
            wrap_db_errors(self._url),
            self._engine.connect().execution_options(tasktable_begin="DEFERRED") as conn,
        ):
            row = conn.execute(stmt).first()
        if row is None:
            return None
        return SessionRecord(
            user_id=int(row.user_id),
            user_name=row.name,
            role=row.role,
            password_hash=row.password_hash,
            credential=row.credential,
        )

    def delete(self, id_hash: str) -> None:
        with self._write() as conn:
            conn.execute(delete(session_table).where(S.id_hash == id_hash))

    def delete_for_user(self, user_id: int) -> int:
        with self._write() as conn:
            return int(conn.execute(delete(session_table).where(S.user_id == user_id)).rowcount)
