"""Dashboard sessions: a password login turned into a cookie, kept server-side.

The cookie holds 256 random bits; the database keeps only their SHA-256
(:mod:`tasktable.storage.sessions`), so a copy of the database lets no one in
and a logout or a new password ends a session for good. The CSRF token and the
key that signs flash notices are derived from the cookie secret with HMAC:
nothing else to store, and nothing a page without the cookie can compute.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from ..errors import InvalidInput
from .errors import NotAuthenticated
from .roles import Role
from .service import Identity, Principal

if TYPE_CHECKING:
    from ..storage.sessions import SessionStore

_SECRET = re.compile(r"^[A-Za-z0-9_-]{43}$")
DEFAULT_LIFETIME = timedelta(hours=12)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def derive(secret: str, purpose: str) -> str:
    """A value only the holder of the session secret (and the server) can compute."""
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, kw_only=True)
class Session:
    """A live session: who, and the secret its cookie carries."""

    principal: Principal
    secret: str

    @property
    def csrf_token(self) -> str:
        return derive(self.secret, "csrf")

    def check_csrf(self, token: str | None) -> bool:
        return isinstance(token, str) and hmac.compare_digest(
            token.encode(), self.csrf_token.encode()
        )

    @property
    def signing_key(self) -> bytes:
        return derive(self.secret, "flash").encode()


class Sessions:
    """Start, find and end the dashboard sessions of an :class:`Identity`'s users."""

    def __init__(self, identity: Identity, *, lifetime: timedelta = DEFAULT_LIFETIME) -> None:
        self.identity = identity
        self.lifetime = lifetime
        self._store: SessionStore | None = None
        self._lock = threading.Lock()

    @property
    def store(self) -> SessionStore:
        if self._store is None:
            from ..storage.sessions import SessionStore

            with self._lock:
                if self._store is None:
                    self._store = SessionStore(self.identity.table.storage)
        return self._store

    def login(self, name: str, password: str, client: str | None = None) -> Session:
        """Check the password (rate-limited by :meth:`Identity.login`) and start a session."""
        principal = self.identity.login(name, password, client)
        record = self.identity.store.get_user(principal.name)
        if record is None:  # removed in between
            raise NotAuthenticated("Wrong user name or password.")
        secret = secrets.token_urlsafe(32)
        self.store.insert(
            _digest(secret),
            record.id,
            _digest(record.password_hash),
            self.lifetime.total_seconds(),
        )
        return Session(principal=principal, secret=secret)

    def find(self, secret: str | None) -> Session | None:
        """The session of a cookie, with the user's current role; None when it is not valid."""
        if not isinstance(secret, str) or not _SECRET.match(secret):
            return None
        record = self.store.find(_digest(secret))
        if record is None:
            return None
        if not hmac.compare_digest(record.credential, _digest(record.password_hash)):
            return None  # the password changed since this login
        try:
            role = Role.parse(record.role)
        except InvalidInput:  # an unknown role in the database: no access rather than a crash
            return None
        principal = Principal(kind="user", name=record.user_name, role=role)
        return Session(principal=principal, secret=secret)

    def logout(self, secret: str | None) -> None:
        if isinstance(secret, str) and _SECRET.match(secret):
            self.store.delete(_digest(secret))
