"""Identity: users with passwords, API tokens, roles and permissions."""

from .errors import (
    AuthError,
    IdentityConflict,
    IdentityNotFound,
    NotAuthenticated,
    PermissionDenied,
    RateLimited,
)
from .roles import Permission, Role
from .service import ApiToken, Identity, LoginThrottle, Principal, User

__all__ = [
    "ApiToken",
    "AuthError",
    "Identity",
    "IdentityConflict",
    "IdentityNotFound",
    "LoginThrottle",
    "NotAuthenticated",
    "Permission",
    "PermissionDenied",
    "Principal",
    "RateLimited",
    "Role",
    "User",
]
