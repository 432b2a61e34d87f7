"""The dashboard's settings, read from ``TASKTABLE_*`` variables when the app is made."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from ..core.durations import parse_duration
from ..errors import InvalidInput
from ..ops import BULK_LIMIT

_TRUE = ("1", "true", "yes", "on")


def _origin(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput(
            f"TASKTABLE_TRUSTED_ORIGINS: {value!r} is not an origin such as https://admin.example.com."
        )
    return f"{parts.scheme}://{parts.netloc}".lower()


@dataclass(frozen=True, kw_only=True)
class DashboardConfig:
    """What the dashboard lets you choose; every field has a safe default."""

    #: Base URL that relative action links (``route_path``) are resolved against;
    #: None: the dashboard's own root, so ``tasks/<id>/files/<name>`` downloads a file.
    action_base_url: str | None = None
    #: Origins besides the request's own allowed to post forms (a proxy that rewrites Host).
    trusted_origins: tuple[str, ...] = ()
    #: How long a login lasts (absolute, not sliding).
    session_lifetime: timedelta = timedelta(hours=12)
    #: Always mark cookies Secure (set this behind a proxy that terminates TLS).
    secure_cookies: bool = False
    #: Bulk actions "on all matching this filter" touch at most this many tasks.
    bulk_limit: int = BULK_LIMIT
    #: Counts per status stop at this number and show "10,000+".
    count_cap: int = 10_000
    page_size: int = 50
    #: How often the page's script refreshes running tasks (seconds).
    refresh_seconds: float = 2.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DashboardConfig:
        env = os.environ if env is None else env
        lifetime = env.get("TASKTABLE_SESSION_LIFETIME") or "12h"
        try:
            session_lifetime = parse_duration(lifetime)
        except InvalidInput as exc:
            raise InvalidInput(f"TASKTABLE_SESSION_LIFETIME: {exc}") from None
        origins = tuple(
            _origin(o) for o in (env.get("TASKTABLE_TRUSTED_ORIGINS") or "").split(",") if o.strip()
        )
        base = (env.get("TASKTABLE_ACTION_BASE_URL") or "").strip() or None
        if base is not None and urlsplit(base).scheme not in ("http", "https", ""):
            raise InvalidInput("TASKTABLE_ACTION_BASE_URL must be an http(s) URL or a path.")
        return cls(
            action_base_url=base,
            trusted_origins=origins,
            session_lifetime=session_lifetime,
            secure_cookies=(env.get("TASKTABLE_SECURE_COOKIES") or "").lower() in _TRUE,
        )
