"""Login and logout.

The login form is protected like every other form: an Origin check and a CSRF
token, here a double-submit cookie (there is no session yet). Failed logins
are rate-limited by :meth:`tasktable.auth.Identity.login` (per user name and
per client address). A login starts a fresh session (no fixation); a logout
deletes it server-side.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..auth.errors import NotAuthenticated, RateLimited
from ..errors import TaskTableError
from .context import Dashboard, Req, error_page
from .web import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    Refused,
    check_origin,
    delete_cookie,
    local_path,
    read_form,
    root_of,
    set_cookie,
)

LOGIN_TOKEN_AGE = 3600


def _login_form(
    dash: Dashboard, req: Req, *, token: str, name: str = "", error: str = "", status: int = 200
) -> Response:
    nxt = local_path(req.request, req.request.query_params.get("next") or req.form.get("next"))
    response = req.page(
        dash,
        "login.html",
        status=status,
        login_token=token,
        name=name,
        error=error,
        next=nxt,
        title="Log in",
    )
    set_cookie(response, req.request, dash.config, LOGIN_COOKIE, token, max_age=LOGIN_TOKEN_AGE)
    return response


def login_page(dash: Dashboard) -> Callable[[Request], Awaitable[Response]]:
    async def login(request: Request) -> Response:
        req = Req(request=request, session=None)
        if request.method == "GET":
            cookie = request.cookies.get(SESSION_COOKIE)
            current = await run_in_threadpool(dash.sessions.find, cookie) if cookie else None
            if current is not None:
                return RedirectResponse(f"{root_of(request)}/", status_code=303)
            return _login_form(dash, req, token=secrets.token_urlsafe(32))
        try:
            check_origin(request, dash.config)
            req.form = await read_form(request)
            expected = request.cookies.get(LOGIN_COOKIE) or ""
            given = req.form.get("csrf") or ""
            if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
                raise Refused(403, "The login form expired; reload the page and try again.")
            name = (req.form.get("name") or "").strip()
            password = req.form.get("password") or ""
            client = request.client.host if request.client else None
            try:
                session = await run_in_threadpool(dash.sessions.login, name, password, client)
            except NotAuthenticated as exc:
                token = secrets.token_urlsafe(32)
                return _login_form(dash, req, token=token, name=name, error=str(exc), status=401)
            except RateLimited as exc:
                token = secrets.token_urlsafe(32)
                response = _login_form(
                    dash, req, token=token, name=name, error=str(exc), status=429
                )
                response.headers["Retry-After"] = str(exc.retry_after)
                return response
        except TaskTableError as exc:
            return error_page(dash, req, exc)
        response = RedirectResponse(local_path(request, req.form.get("next")), status_code=303)
        lifetime = int(dash.sessions.lifetime.total_seconds())
        set_cookie(response, request, dash.config, SESSION_COOKIE, session.secret, lifetime)
        delete_cookie(response, request, dash.config, LOGIN_COOKIE)
        return response

    return login


def logout(dash: Dashboard, req: Req) -> Response:
    """POST only, with the CSRF token (checked by the endpoint wrapper)."""
    if req.session is not None:
        dash.sessions.logout(req.session.secret)
    response = RedirectResponse(f"{req.root}/login", status_code=303)
    delete_cookie(response, req.request, dash.config, SESSION_COOKIE)
    return response
