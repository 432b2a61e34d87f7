"""Templates (Jinja2, autoescaped everywhere) and the small formatting helpers they use."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import jinja2

from ..core.task import ActionLink

STATIC_FILES = ("dashboard.css", "dashboard.js", "favicon.svg")
#: route_params that configure the link itself (the seed's ``target``, ``_secure``...).
_LINK_OPTIONS = ("target",)


def fmt_time(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def fmt_iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat() if value else ""


def fmt_seconds(seconds: float | None) -> str:
    """``75`` -> ``1m 15s``; ``None`` -> ``—``."""
    if seconds is None:
        return "—"
    if 0 <= seconds < 10 and seconds != int(seconds):
        return f"{seconds:.1f}s"
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def fmt_ago(value: datetime | None, now: datetime | None = None) -> str:
    if value is None:
        return "—"
    delta = ((now or datetime.now(UTC)) - value).total_seconds()
    if delta < 0:
        return f"in {fmt_seconds(-delta)}"
    if delta < 1:
        return "just now"
    return f"{fmt_seconds(delta)} ago"


def fmt_count(value: int, cap: int | None = None) -> str:
    if cap is not None and value > cap:
        return f"{cap:,}+"
    return f"{value:,}"


def fmt_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def short_json(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def percent(done: int, total: int | None) -> int:
    if not total:
        return 0
    return max(0, min(100, round(done * 100 / total)))


def handler_parts(path: str) -> tuple[str, str]:
    """``pkg.mod:Class`` (or ``pkg.mod.Class``) -> ``("pkg.mod", "Class")``."""
    module, sep, name = path.rpartition(":")
    if not sep:
        module, _, name = path.rpartition(".")
    return module, name


def _safe_url_text(text: str) -> bool:
    return bool(text) and all(0x20 < ord(c) != 0x7F for c in text)


def action_href(link: ActionLink | None, base: str) -> str | None:
    """The URL of the seed's action link, or None when it must not be a link.

    ``route_path`` is resolved against ``base`` (``TASKTABLE_ACTION_BASE_URL``,
    or the dashboard's root, where ``tasks/<id>/files/<name>`` downloads a
    file); ``route_params`` become the query string, except the seed's link
    options (``target`` and keys starting with ``_``). Only http(s) URLs and
    paths come out: ``javascript:``, ``data:`` and the like are never links.
    """
    if link is None or not link.route_path:
        return None
    path = str(link.route_path).strip()
    if not _safe_url_text(path) or "\\" in path:
        return None
    url = urljoin(base, path)
    parts = urlsplit(url)
    if parts.scheme not in ("", "http", "https"):
        return None
    if not parts.scheme and not url.startswith("/"):
        return None
    params = {
        str(k): v
        for k, v in (link.route_params or {}).items()
        if not str(k).startswith("_")
        and k not in _LINK_OPTIONS
        and isinstance(v, str | int | float | bool)
    }
    if params:
        url += ("&" if parts.query else "?") + urlencode(params)
    return url


def action_target(link: ActionLink | None) -> str | None:
    target = (link.route_params or {}).get("target") if link else None
    return target if target in ("_self", "_blank") else None


def action_text(link: ActionLink | None) -> str:
    if link is None:
        return ""
    return str(link.text or link.route_path or "")


def _asset_versions() -> dict[str, str]:
    root = resources.files("tasktable.dashboard") / "static"
    return {
        name: hashlib.sha256((root / name).read_bytes()).hexdigest()[:10] for name in STATIC_FILES
    }


def environment() -> jinja2.Environment:
    """The Jinja2 environment: autoescape on for every template, undefined names are errors."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("tasktable.dashboard", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        time=fmt_time,
        iso=fmt_iso,
        ago=fmt_ago,
        seconds=fmt_seconds,
        count=fmt_count,
        size=fmt_size,
        pretty_json=pretty_json,
        short_json=short_json,
        handler_parts=handler_parts,
    )
    env.globals.update(
        percent=percent,
        action_href=action_href,
        action_target=action_target,
        action_text=action_text,
        asset_version=_asset_versions(),
    )
    return env


def render(env: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    return env.get_template(name).render(context)


__all__ = ["action_href", "environment", "render"]
