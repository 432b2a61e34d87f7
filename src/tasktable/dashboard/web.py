"""HTTP plumbing of the dashboard: security headers, cookies, Origin checks, forms, flash.

Nothing here knows about tasks; :mod:`.views` does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import TaskTableError
from .config import DashboardConfig

SESSION_COOKIE = "tasktable_session"
LOGIN_COOKIE = "tasktable_login"
FLASH_COOKIE = "tasktable_flash"
#: A form body larger than this is refused unread (1,000 ids fit in ~15 KB).
FORM_LIMIT = 256 * 1024
FLASH_LEVELS = ("success", "info", "warning", "error")

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


class Refused(TaskTableError):
    """A request refused before any work: bad origin, bad CSRF token, oversized form."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class SecurityHeaders:
    """Adds the security headers to every response the dashboard sends (those a
    response already set, such as a download's stricter CSP, are kept), and
    ``Cache-Control: no-store`` to everything but static files."""

    def __init__(self, app: ASGIApp, static_prefix: str = "/static/") -> None:
        self.app = app
        self.static_prefix = static_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        root = scope.get("root_path", "")
        path: str = scope.get("path", "")
        static = path[len(root) :].startswith(self.static_prefix)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for name, value in SECURITY_HEADERS.items():
                    if name.encode() not in present:
                        headers.append((name.encode(), value.encode()))
                if not static and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def root_of(request: Request) -> str:
    """The path the dashboard is mounted at, without a trailing slash ('' at the root)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def is_secure(request: Request, config: DashboardConfig) -> bool:
    return config.secure_cookies or request.url.scheme == "https"


def set_cookie(
    response: Response,
    request: Request,
    config: DashboardConfig,
    name: str,
    value: str,
    max_age: int | None = None,
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=root_of(request) + "/",
        secure=is_secure(request, config),
        httponly=True,
        samesite="strict",
    )


def delete_cookie(response: Response, request: Request, config: DashboardConfig, name: str) -> None:
    response.delete_cookie(
        name,
        path=root_of(request) + "/",
        secure=is_secure(request, config),
        httponly=True,
        samesite="strict",
    )


def _origin_of(url: str) -> tuple[str, str] | None:
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.netloc:
        return None
    return parts.scheme.lower(), parts.netloc.lower()


def check_origin(request: Request, config: DashboardConfig) -> None:
    """Refuse a state change that a page of another origin may have sent.

    The ``Origin`` header (or, without it, the ``Referer``) must name this
    server's host, as the request's own ``Host`` header does, or be listed in
    ``TASKTABLE_TRUSTED_ORIGINS``. A request with neither header is refused.
    """
    raw = request.headers.get("origin")
    if raw is None or raw == "null":
        raw = request.headers.get("referer")
    found = _origin_of(raw) if raw else None
    if found is None:
        raise Refused(
            403, "This form came without an Origin or Referer header; it was not accepted."
        )
    scheme, netloc = found
    if f"{scheme}://{netloc}" in config.trusted_origins:
        return
    host = (request.headers.get("host") or "").lower()
    if netloc == host and scheme in (request.url.scheme, "https"):
        return
    raise Refused(
        403,
        "This form was sent from another site; it was not accepted. (Behind a proxy that "
        "changes the Host header? List the public origin in TASKTABLE_TRUSTED_ORIGINS.)",
    )


class Form:
    """A url-encoded form: every value of a field, or the first one."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._values: dict[str, list[str]] = {}
        for key, value in pairs:
            self._values.setdefault(key, []).append(value)

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self._values.get(name)
        return values[0] if values else default

    def getlist(self, name: str) -> list[str]:
        return list(self._values.get(name, []))


async def read_form(request: Request) -> Form:
    """The body as a url-encoded form, at most :data:`FORM_LIMIT` bytes."""
    media = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if media not in ("application/x-www-form-urlencoded", ""):  # "": an empty POST
        raise Refused(415, "Forms must be sent url-encoded.")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > FORM_LIMIT):
        raise Refused(413, "This form is too large.")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_LIMIT:
            raise Refused(413, "This form is too large.")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "This form is not UTF-8.") from None
    return Form(parse_qsl(text, keep_blank_values=True, max_num_fields=5000))


# -- flash notices: a cookie signed with a key derived from the session secret ----------
def _sign(key: bytes, payload: bytes) -> str:
    return hmac.new(key, payload, hashlib.sha256).hexdigest()


def encode_flash(key: bytes, notices: list[tuple[str, str]]) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(notices).encode()).decode().rstrip("=")
    return f"{payload}.{_sign(key, payload.encode())}"


def decode_flash(key: bytes, value: str | None) -> list[tuple[str, str]]:
    """The notices of a flash cookie signed with ``key``; [] when absent or forged."""
    if not value or "." not in value:
        return []
    payload, _, signature = value.rpartition(".")
    if not hmac.compare_digest(signature.encode(), _sign(key, payload.encode()).encode()):
        return []
    try:
        raw: Any = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, binascii.Error):
        return []
    notices: list[tuple[str, str]] = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, list) and len(item) == 2 and item[0] in FLASH_LEVELS:
            notices.append((str(item[0]), str(item[1])))
    return notices[:5]


def local_path(request: Request, target: str | None) -> str:
    """``target`` if it is a path inside this dashboard (for redirects), else its root."""
    root = root_of(request)
    if target:
        parts = urlsplit(target)
        path = parts.path
        if (
            not parts.scheme
            and not parts.netloc
            and path.startswith(root + "/")
            and not path.startswith("//")
            and "\\" not in target
            and all(ord(c) > 0x20 for c in target)
        ):
            return path + (f"?{parts.query}" if parts.query else "")
    return root + "/"
