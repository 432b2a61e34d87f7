"""The identity service: users, API tokens, roles, and rate-limited password logins.

Used by ``tasktable user``/``tasktable token``, the REST API (bearer tokens)
and the dashboard (password logins). Passwords and token secrets are never
stored or logged in clear.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from ..core.task import utc_now
from ..errors import InvalidInput
from .errors import (
    IdentityConflict,
    IdentityNotFound,
    NotAuthenticated,
    PermissionDenied,
    RateLimited,
)
from .passwords import hash_password, needs_rehash, verify_password
from .roles import Permission, Role
from .tokens import digests_equal, display_prefix, looks_like_token, new_token, token_digest

if TYPE_CHECKING:
    from ..app import TaskTable
    from ..storage.identity import IdentityStore, TokenRecord, UserRecord

_USER_NAME = re.compile(r"^[A-Za-z0-9_.@+-]{1,150}$")
_TOKEN_NAME = re.compile(r"^[A-Za-z0-9_.:@-]{1,100}$")


@dataclass(frozen=True, kw_only=True)
class Principal:
    """Who is calling: a user (dashboard login) or an API token, with its role."""

    kind: Literal["user", "token"]
    name: str
    role: Role

    def can(self, permission: Permission) -> bool:
        return self.role.can(permission)

    def require(self, permission: Permission) -> None:
        if not self.can(permission):
            raise PermissionDenied(
                f"The {self.kind} {self.name!r} has the {self.role.value} role, which may not "
                f"{_VERBS[permission]}; ask an admin for a token with a role that may."
            )


_VERBS = {
    Permission.READ: "read tasks",
    Permission.ACT: "enqueue, change, retry, cancel or delete tasks (operator or admin)",
    Permission.MANAGE: "manage users and tokens (admin)",
}


@dataclass(frozen=True, kw_only=True)
class User:
    name: str
    role: Role
    created_at: datetime
    last_login_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role.value,
            "created_at": self.created_at.isoformat(),
            "last_login_at": self.last_login_at.isoformat() if self.last_login_at else None,
        }


@dataclass(frozen=True, kw_only=True)
class ApiToken:
    """A token as listed: its name, role and first characters, never the secret."""

    name: str
    role: Role
    prefix: str
    created_at: datetime
    last_used_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role.value,
            "prefix": self.prefix,
            "created_at": self.created_at.isoformat(),
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
        }


@dataclass(frozen=True, kw_only=True)
class LoginThrottle:
    """Failed password logins allowed per user name and per client in a sliding window.

    Past either limit, logins are refused without checking the password until
    the window has passed; a successful login clears the name's count.
    """

    max_per_name: int = 10
    max_per_client: int = 50
    window: timedelta = timedelta(minutes=15)


def _user(record: UserRecord) -> User:
    return User(
        name=record.name,
        role=Role.parse(record.role),
        created_at=record.created_at,
        last_login_at=record.last_login_at,
    )


def _token(record: TokenRecord) -> ApiToken:
    return ApiToken(
        name=record.name,
        role=Role.parse(record.role),
        prefix=record.prefix,
        created_at=record.created_at,
        last_used_at=record.last_used_at,
    )


def check_user_name(name: str) -> str:
    if not isinstance(name, str) or not _USER_NAME.match(name):
        raise InvalidInput(
            f"User name {name!r} is not valid; use 1 to 150 letters, digits or _ . @ + -."
        )
    return name


def check_token_name(name: str) -> str:
    if not isinstance(name, str) or not _TOKEN_NAME.match(name):
        raise InvalidInput(
            f"Token name {name!r} is not valid; use 1 to 100 letters, digits or _ . : @ -."
        )
    return name


class Identity:
    """Users and tokens of one :class:`~tasktable.TaskTable`'s database."""

    def __init__(self, table: TaskTable, *, throttle: LoginThrottle | None = None) -> None:
        self.table = table
        self.throttle = throttle or LoginThrottle()
        self._store: IdentityStore | None = None
        self._lock = threading.Lock()

    @property
    def store(self) -> IdentityStore:
        if self._store is None:
            from ..storage.identity import IdentityStore

            with self._lock:
                if self._store is None:
                    self._store = IdentityStore(self.table.storage)
        return self._store

    # -- users --------------------------------------------------------------------
    def add_user(self, name: str, role: str | Role, password: str) -> User:
        check_user_name(name)
        chosen = Role.parse(role)
        record = self.store.insert_user(name, chosen.value, hash_password(password))
        if record is None:
            raise IdentityConflict(f"A user named {name!r} already exists.")
        return _user(record)

    def list_users(self) -> list[User]:
        return [_user(r) for r in self.store.list_users()]

    def remove_user(self, name: str) -> None:
        if not self.store.delete_user(name):
            raise IdentityNotFound(f"No user named {name!r}.")

    def set_password(self, name: str, password: str) -> None:
        if not self.store.update_user(name, password_hash=hash_password(password)):
            raise IdentityNotFound(f"No user named {name!r}.")

    def set_role(self, name: str, role: str | Role) -> None:
        if not self.store.update_user(name, role=Role.parse(role).value):
            raise IdentityNotFound(f"No user named {name!r}.")

    def login(self, name: str, password: str, client: str | None = None) -> Principal:
        """Check a password; raises :class:`RateLimited` or :class:`NotAuthenticated`."""
        subjects = [f"user:{str(name)[:200]}"]
        if client:
            subjects.append(f"client:{client[:240]}")
        window = self.throttle.window.total_seconds()
        counts = self.store.count_failures(subjects, window)
        limits = [self.throttle.max_per_name, self.throttle.max_per_client]
        if any(counts[s] >= limit for s, limit in zip(subjects, limits, strict=False)):
            raise RateLimited(
                "Too many failed logins; wait a few minutes and try again.",
                retry_after=int(window),
            )
        record = self.store.get_user(name) if isinstance(name, str) else None
        if not verify_password(record.password_hash if record else None, password):
            self.store.add_failures(subjects, keep=window)
            raise NotAuthenticated("Wrong user name or password.")
        assert record is not None
        self.store.clear_failures(subjects[0])
        self.store.touch_user(record.id)
        if needs_rehash(record.password_hash):
            self.store.update_user(record.name, password_hash=hash_password(password))
        return Principal(kind="user", name=record.name, role=Role.parse(record.role))

    # -- tokens -------------------------------------------------------------------
    def create_token(self, name: str, role: str | Role) -> tuple[ApiToken, str]:
        """A new token and its secret: the only time the secret is available."""
        check_token_name(name)
        chosen = Role.parse(role)
        secret = new_token()
        record = self.store.insert_token(
            name, chosen.value, token_digest(secret), display_prefix(secret)
        )
        if record is None:
            raise IdentityConflict(
                f"A token named {name!r} already exists; revoke it first or pick another name."
            )
        return _token(record), secret

    def list_tokens(self) -> list[ApiToken]:
        return [_token(r) for r in self.store.list_tokens()]

    def revoke_token(self, name: str) -> None:
        if not self.store.delete_token(name):
            raise IdentityNotFound(f"No token named {name!r}.")

    def authenticate_token(self, secret: str) -> Principal:
        """The principal of a bearer token; raises :class:`NotAuthenticated`."""
        refused = NotAuthenticated("The token is not valid (unknown, revoked or mistyped).")
        if not isinstance(secret, str) or not looks_like_token(secret):
            raise refused
        digest = token_digest(secret)
        record = self.store.token_by_hash(digest)
        if record is None or not digests_equal(record.token_hash, digest):
            raise refused
        try:
            role = Role.parse(record.role)
        except InvalidInput:
            raise refused from None
        last = record.last_used_at
        if last is None or utc_now() - last > timedelta(seconds=60):
            self.store.touch_token(record.id)
        return Principal(kind="token", name=record.name, role=role)

    def has_principals(self) -> bool:
        """True when at least one user or token exists."""
        return self.store.count_principals() > 0
