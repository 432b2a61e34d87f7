"""What every dashboard view shares, and the wrapper that makes a view an endpoint.

The wrapper does, in this order, for every request: the Origin check and
the bounded form read (POST), the session lookup, the CSRF check (POST), the
role check; then it runs the view in a thread (the operations layer is
synchronous) and turns a :class:`~tasktable.errors.TaskTableError` into an
error page with the right status. GET views never change anything.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from ..auth.errors import (
    IdentityNotFound,
    NotAuthenticated,
    PermissionDenied,
    RateLimited,
)
from ..auth.roles import Permission
from ..auth.service import Identity
from ..auth.sessions import Session, Sessions
from ..errors import (
    DatabaseError,
    InvalidInput,
    InvalidTransition,
    SchemaMissing,
    TaskNotFound,
    TaskTableError,
)
from ..ops import Operations
from .config import DashboardConfig
from .render import render
from .web import (
    FLASH_COOKIE,
    SESSION_COOKIE,
    Form,
    Refused,
    check_origin,
    decode_flash,
    delete_cookie,
    encode_flash,
    local_path,
    read_form,
    root_of,
    set_cookie,
)

log = logging.getLogger("tasktable.dashboard")

View = Callable[["Dashboard", "Req"], Response]


@dataclass
class Dashboard:
    """The dashboard's shared state: operations, identity, sessions, templates, settings."""

    ops: Operations
    identity: Identity
    sessions: Sessions
    config: DashboardConfig
    env: jinja2.Environment


@dataclass
class Req:
    """One request as a view sees it: checked, with its session and form."""

    request: Request
    session: Session | None
    form: Form = field(default_factory=lambda: Form(()))
    flash: list[tuple[str, str]] = field(default_factory=list)

    @property
    def root(self) -> str:
        return root_of(self.request)

    @property
    def can_act(self) -> bool:
        return self.session is not None and self.session.principal.can(Permission.ACT)

    def page(self, dash: Dashboard, template: str, status: int = 200, **values: Any) -> Response:
        context = {
            "root": self.root,
            "user": self.session.principal if self.session else None,
            "can_act": self.can_act,
            "csrf": self.session.csrf_token if self.session else "",
            "flash": self.flash,
            "here": local_path(self.request, self.request.url.path + _query(self.request)),
            "refresh_ms": int(dash.config.refresh_seconds * 1000),
            "nav": "",
            **values,
        }
        response = HTMLResponse(render(dash.env, template, context), status_code=status)
        if self.flash:  # shown once
            delete_cookie(response, self.request, dash.config, FLASH_COOKIE)
        return response

    def redirect(self, dash: Dashboard, target: str, *notices: tuple[str, str]) -> Response:
        """303 to a path inside the dashboard, with flash notices for the next page."""
        response = RedirectResponse(local_path(self.request, target), status_code=303)
        if notices and self.session is not None:
            value = encode_flash(self.session.signing_key, list(notices))
            set_cookie(response, self.request, dash.config, FLASH_COOKIE, value)
        return response


def _query(request: Request) -> str:
    query = request.url.query
    return f"?{query}" if query else ""


def _status_of(exc: TaskTableError) -> tuple[int, str]:
    """The HTTP status and page title of an error."""
    if isinstance(exc, Refused):
        return exc.status, "Request refused"
    if isinstance(exc, RateLimited):
        return 429, "Too many attempts"
    if isinstance(exc, NotAuthenticated):
        return 401, "Not logged in"
    if isinstance(exc, PermissionDenied):
        return 403, "Not allowed"
    if isinstance(exc, TaskNotFound | IdentityNotFound):
        return 404, "Not found"
    if isinstance(exc, InvalidTransition):
        return 409, "Not possible now"
    if isinstance(exc, SchemaMissing):
        return 503, "Database schema missing"
    if isinstance(exc, DatabaseError):
        return 503, "Database unavailable"
    if isinstance(exc, InvalidInput):
        return 422, "Invalid request"
    return 400, "Invalid request"


def error_page(dash: Dashboard, req: Req, exc: TaskTableError) -> Response:
    status, title = _status_of(exc)
    if isinstance(exc, DatabaseError):
        log.error("Dashboard request failed: %s", exc)
        message = (
            "The database has no tasktable schema or an older one; run: tasktable migrate."
            if isinstance(exc, SchemaMissing)
            else "The database is unavailable; try again shortly."
        )
    else:
        message = str(exc)
    response = req.page(dash, "error.html", status=status, title=title, message=message)
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def wants_json(request: Request) -> bool:
    return request.url.path.endswith(".json")


def endpoint(
    dash: Dashboard,
    view: View,
    *,
    method: str = "GET",
    permission: Permission | None = Permission.READ,
) -> Callable[[Request], Awaitable[Response]]:
    """An async Starlette endpoint around a synchronous view."""

    async def handle(request: Request) -> Response:
        req = Req(request=request, session=None)
        try:
            form = Form(())
            if method == "POST":
                check_origin(request, dash.config)
                form = await read_form(request)
            req.form = form
            if permission is not None:
                cookie = request.cookies.get(SESSION_COOKIE)
                req.session = await run_in_threadpool(dash.sessions.find, cookie)
                if req.session is None:
                    return _login_needed(dash, req, method)
                if method == "POST" and not req.session.check_csrf(form.get("csrf")):
                    raise Refused(
                        403, "This form's security token is missing or stale; reload the page."
                    )
                req.session.principal.require(permission)
                if method == "GET":
                    req.flash = decode_flash(
                        req.session.signing_key, request.cookies.get(FLASH_COOKIE)
                    )
            return await run_in_threadpool(view, dash, req)
        except TaskTableError as exc:
            if wants_json(request):
                status, _ = _status_of(exc)
                return JSONResponse({"error": str(exc)}, status_code=status)
            return error_page(dash, req, exc)
        except Exception:  # a bug: an error page, the traceback in the log, nothing leaked
            log.exception("Unexpected error in %s %s", request.method, request.url.path)
            return HTMLResponse(
                "<!doctype html><title>Error</title><p>Unexpected server error; it was logged.",
                status_code=500,
            )

    handle.__name__ = getattr(view, "__name__", "view")
    return handle


def _login_needed(dash: Dashboard, req: Req, method: str) -> Response:
    request = req.request
    if wants_json(request):
        return JSONResponse({"error": "Not logged in."}, status_code=401)
    if method != "GET":
        req.flash = [("warning", "Your session has ended; log in again.")]
        return error_page(dash, req, Refused(401, "Your session has ended; log in again."))
    target = local_path(request, request.url.path + _query(request))
    login = f"{req.root}/login"
    if target != f"{req.root}/":
        login += "?" + urlencode({"next": target})
    response = RedirectResponse(login, status_code=303)
    if request.cookies.get(SESSION_COOKIE):
        delete_cookie(response, request, dash.config, SESSION_COOKIE)
    return response
