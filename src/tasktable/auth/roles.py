"""Roles and what each may do: viewers read, operators act, admins also manage identity."""

from __future__ import annotations

import enum

from ..errors import InvalidInput


class Permission(enum.StrEnum):
    READ = "read"  # list, show, download files, stats
    ACT = "act"  # enqueue, change, retry, cancel, delete
    MANAGE = "manage"  # users and tokens


class Role(enum.StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @classmethod
    def parse(cls, value: str) -> Role:
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            allowed = ", ".join(r.value for r in cls)
            raise InvalidInput(f"Unknown role {value!r}; use one of: {allowed}.") from None

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS[self]


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ}),
    Role.OPERATOR: frozenset({Permission.READ, Permission.ACT}),
    Role.ADMIN: frozenset({Permission.READ, Permission.ACT, Permission.MANAGE}),
}
