"""Users, tokens, roles and rate-limited logins (the identity service on each database)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tasktable import TaskTable
from tasktable.auth import (
    Identity,
    IdentityConflict,
    IdentityNotFound,
    LoginThrottle,
    NotAuthenticated,
    Permission,
    PermissionDenied,
    RateLimited,
    Role,
)
from tasktable.auth.tokens import token_digest
from tasktable.errors import InvalidInput
from tasktable.storage.schema import token_table, user_table

PASSWORD = "correct horse battery"


@pytest.fixture
def identity(table: TaskTable) -> Identity:
    return Identity(table, throttle=LoginThrottle(max_per_name=3, max_per_client=5))


def test_passwords_are_stored_as_argon2id_hashes(identity: Identity, table: TaskTable) -> None:
    user = identity.add_user("alice", "operator", PASSWORD)
    assert user.role is Role.OPERATOR
    with table.storage.engine.connect() as conn:
        stored = conn.execute(select(user_table.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    principal = identity.login("alice", PASSWORD)
    assert (principal.kind, principal.name, principal.role) == ("user", "alice", Role.OPERATOR)
    assert identity.list_users()[0].last_login_at is not None


def test_wrong_password_and_unknown_user_read_the_same(identity: Identity) -> None:
    identity.add_user("alice", "viewer", PASSWORD)
    with pytest.raises(NotAuthenticated) as wrong:
        identity.login("alice", "not the password")
    with pytest.raises(NotAuthenticated) as unknown:
        identity.login("mallory", PASSWORD)
    assert str(wrong.value) == str(unknown.value)


def test_user_rules(identity: Identity) -> None:
    identity.add_user("alice", "admin", PASSWORD)
    with pytest.raises(IdentityConflict):
        identity.add_user("alice", "viewer", PASSWORD)
    for name in ("", "a b", "x" * 151, "'; --"):
        with pytest.raises(InvalidInput):
            identity.add_user(name, "viewer", PASSWORD)
    with pytest.raises(InvalidInput):
        identity.add_user("bob", "viewer", "short")
    with pytest.raises(InvalidInput):
        identity.add_user("bob", "root", PASSWORD)
    identity.set_role("alice", "viewer")
    identity.set_password("alice", "another long password")
    assert identity.login("alice", "another long password").role is Role.VIEWER
    identity.remove_user("alice")
    with pytest.raises(IdentityNotFound):
        identity.remove_user("alice")


def test_tokens_are_random_shown_once_and_stored_as_digests(
    identity: Identity, table: TaskTable
) -> None:
    token, secret = identity.create_token("ci", "operator")
    other_token, other = identity.create_token("cron", "viewer")
    assert secret != other and secret.startswith("tt_") and len(secret) == 46
    assert token.prefix == secret[:10]
    with table.storage.engine.connect() as conn:
        stored = dict(conn.execute(select(token_table.c.name, token_table.c.token_hash)).all())
    assert stored == {"ci": token_digest(secret), "cron": token_digest(other)}
    assert secret not in str(stored)
    assert "token" not in token.to_json() and secret not in str(other_token.to_json())
    principal = identity.authenticate_token(secret)
    assert (principal.kind, principal.name, principal.role) == ("token", "ci", Role.OPERATOR)
    assert identity.list_tokens()[0].last_used_at is not None
    with pytest.raises(IdentityConflict):
        identity.create_token("ci", "admin")
    identity.revoke_token("ci")
    with pytest.raises(NotAuthenticated):
        identity.authenticate_token(secret)
    with pytest.raises(IdentityNotFound):
        identity.revoke_token("ci")
    for bad in ("", "tt_", secret[:-1], secret + "x", other.upper()):
        with pytest.raises(NotAuthenticated):
            identity.authenticate_token(bad)


def test_failed_logins_are_rate_limited_per_name(identity: Identity) -> None:
    identity.add_user("alice", "viewer", PASSWORD)
    for _ in range(3):
        with pytest.raises(NotAuthenticated):
            identity.login("alice", "guess", client="10.0.0.1")
    with pytest.raises(RateLimited) as limited:
        identity.login("alice", PASSWORD, client="10.0.0.2")  # even the right password
    assert limited.value.retry_after == 900
    identity.add_user("bob", "viewer", PASSWORD)
    assert identity.login("bob", PASSWORD).name == "bob"  # other names are not locked


def test_failed_logins_are_rate_limited_per_client(identity: Identity) -> None:
    identity.add_user("carol", "viewer", PASSWORD)
    for name in ("u1", "u2", "u3", "u4", "u5"):
        with pytest.raises(NotAuthenticated):
            identity.login(name, "guess", client="10.0.0.9")
    with pytest.raises(RateLimited):
        identity.login("carol", PASSWORD, client="10.0.0.9")
    assert identity.login("carol", PASSWORD, client="10.0.0.10").name == "carol"


def test_a_success_clears_the_name_and_the_window_passes(table: TaskTable) -> None:
    identity = Identity(table, throttle=LoginThrottle(max_per_name=2, window=timedelta(0)))
    identity.add_user("dave", "viewer", PASSWORD)
    for _ in range(5):  # a zero window forgets each failure at once
        with pytest.raises(NotAuthenticated):
            identity.login("dave", "guess")
    assert identity.login("dave", PASSWORD).name == "dave"


def test_roles_and_permissions() -> None:
    assert Role.VIEWER.can(Permission.READ) and not Role.VIEWER.can(Permission.ACT)
    assert Role.OPERATOR.can(Permission.ACT) and not Role.OPERATOR.can(Permission.MANAGE)
    assert all(Role.ADMIN.can(p) for p in Permission)
    from tasktable.auth import Principal

    with pytest.raises(PermissionDenied, match="viewer"):
        Principal(kind="token", name="t", role=Role.VIEWER).require(Permission.ACT)
    assert Role.parse(" Admin ") is Role.ADMIN


def test_has_principals(identity: Identity) -> None:
    assert not identity.has_principals()
    identity.create_token("first", "admin")
    assert identity.has_principals()
