"""Errors of authentication and authorization (each a :class:`TaskTableError`)."""

from __future__ import annotations

from ..errors import TaskTableError


class AuthError(TaskTableError):
    """Base of the identity errors."""

    code = "auth_error"


class NotAuthenticated(AuthError):
    """No credentials, or credentials that match no user or token."""

    code = "unauthorized"


class PermissionDenied(AuthError):
    """The caller is known but its role does not allow the action."""

    code = "forbidden"


class RateLimited(AuthError):
    """Too many failed logins: refused without checking the password."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class IdentityConflict(AuthError):
    """A user or token with that name already exists."""

    code = "conflict"


class IdentityNotFound(AuthError):
    """No user or token has that name."""

    code = "not_found"
