"""Frozen settings, read once from the environment by :meth:`Settings.from_env`."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from .core.durations import parse_duration
from .core.handlers import Allowlist
from .errors import InvalidInput

DEFAULT_DATABASE_URL = "sqlite:///var/tasktable.sqlite3"
DEFAULT_LOG_FILE = "var/log/tasktable/background_task.log"


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number, not {raw!r}.") from None
    if value <= 0:
        raise InvalidInput(f"{name} must be positive, not {raw!r}.")
    return value


def _duration(env: Mapping[str, str], name: str, default: str) -> timedelta:
    raw = env.get(name) or default
    try:
        return parse_duration(raw)
    except InvalidInput as exc:
        raise InvalidInput(f"{name}: {exc}") from None


_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
    "gib": 1024**3,
}


def _size(env: Mapping[str, str], name: str) -> int | None:
    """A byte size such as ``512MB`` or ``2GiB`` (binary units); unset means no limit."""
    raw = (env.get(name) or "").strip().lower().replace(" ", "")
    if not raw:
        return None
    number = raw.rstrip("bgikm")
    unit = raw[len(number) :]
    try:
        value = int(float(number) * _SIZE_UNITS[unit])
    except (ValueError, KeyError):
        raise InvalidInput(f"{name} must be a size such as 512MB or 2GB, not {raw!r}.") from None
    if value <= 0:
        raise InvalidInput(f"{name} must be positive, not {raw!r}.")
    return value


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything configurable, with the defaults the docs promise."""

    database_url: str = DEFAULT_DATABASE_URL
    handlers: Allowlist = field(default_factory=lambda: Allowlist(None))
    log_file: str = DEFAULT_LOG_FILE
    retention: timedelta = timedelta(days=30)
    max_args_bytes: int = 1024 * 1024
    max_file_bytes: int = 10 * 1024 * 1024
    heartbeat_interval: timedelta = timedelta(seconds=5)
    dead_after: timedelta = timedelta(seconds=30)
    poll_interval: timedelta = timedelta(seconds=1)
    clean_interval: timedelta = timedelta(hours=1)
    #: A worker that cannot reach the database this long exits non-zero (to be restarted).
    max_db_outage: timedelta = timedelta(minutes=5)
    #: How long a running task's handler has to stop by itself after a cancel request.
    cancel_grace: timedelta = timedelta(seconds=10)
    #: Address-space cap of each slot process, in bytes (None: no cap).
    max_memory: int | None = None
    dashboard_url: str = "http://127.0.0.1:8080"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, object] = {
            "database_url": env.get("TASKTABLE_DATABASE_URL") or DEFAULT_DATABASE_URL,
            "handlers": Allowlist.parse(env.get("TASKTABLE_HANDLERS")),
            "log_file": env.get("TASKTABLE_LOG_FILE") or DEFAULT_LOG_FILE,
            "retention": _duration(env, "TASKTABLE_RETENTION", "30d"),
            "max_args_bytes": _int(env, "TASKTABLE_MAX_ARGS_BYTES", 1024 * 1024),
            "max_file_bytes": _int(env, "TASKTABLE_MAX_FILE_BYTES", 10 * 1024 * 1024),
            "heartbeat_interval": _duration(env, "TASKTABLE_HEARTBEAT", "5s"),
            "dead_after": _duration(env, "TASKTABLE_DEAD_AFTER", "30s"),
            "poll_interval": _duration(env, "TASKTABLE_POLL_INTERVAL", "1s"),
            "clean_interval": _duration(env, "TASKTABLE_CLEAN_INTERVAL", "1h"),
            "max_db_outage": _duration(env, "TASKTABLE_MAX_DB_OUTAGE", "5m"),
            "cancel_grace": _duration(env, "TASKTABLE_CANCEL_GRACE", "10s"),
            "max_memory": _size(env, "TASKTABLE_MAX_MEMORY"),
            "dashboard_url": env.get("TASKTABLE_DASHBOARD_URL") or "http://127.0.0.1:8080",
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
