"""The dashboard as an ASGI app: :func:`create_dashboard`.

``tasktable serve`` serves it at ``/`` beside the REST API (see
:func:`tasktable.web.create_app`); to mount it in your own application::

    from tasktable import TaskTable
    from tasktable.web import create_app

    table = TaskTable("postgresql://app@db/app")
    host_app.mount("/tasks-admin", create_app(table))   # dashboard at /tasks-admin/

Every URL it writes is relative to where it is mounted (the ASGI ``root_path``).
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..app import TaskTable
from ..auth.roles import Permission
from ..auth.service import Identity
from ..auth.sessions import Sessions
from ..ops import Operations
from .auth_views import login_page, logout
from .config import DashboardConfig
from .context import Dashboard, endpoint
from .overview_views import overview
from .render import environment, render
from .task_views import bulk, download, grid, live, task_action, task_page
from .web import SecurityHeaders, root_of

ACT = Permission.ACT


def _routes(dash: Dashboard) -> list[Route | Mount]:
    def get(path: str, view: Any, name: str) -> Route:
        return Route(path, endpoint(dash, view), methods=["GET"], name=name)

    def post(path: str, view: Any, name: str, permission: Permission = ACT) -> Route:
        handler = endpoint(dash, view, method="POST", permission=permission)
        return Route(path, handler, methods=["POST"], name=name)

    static = StaticFiles(directory=str(resources.files("tasktable.dashboard") / "static"))
    return [
        get("/", grid, "grid"),
        get("/overview", overview, "overview"),
        get("/live.json", live, "live"),
        get("/tasks/{task_id}", task_page, "task"),
        get("/tasks/{task_id}/files/{filename:path}", download, "download"),
        post("/tasks/bulk", bulk, "bulk"),
        post("/tasks/{task_id}/retry", task_action("retry"), "retry"),
        post("/tasks/{task_id}/cancel", task_action("cancel"), "cancel"),
        post("/tasks/{task_id}/delete", task_action("delete"), "delete"),
        Route("/login", login_page(dash), methods=["GET", "POST"], name="login"),
        post("/logout", logout, "logout", Permission.READ),
        Mount("/static", app=static, name="static"),
    ]


def create_dashboard(
    table: TaskTable,
    *,
    identity: Identity | None = None,
    config: DashboardConfig | None = None,
    operations: Operations | None = None,
) -> Starlette:
    """The dashboard over ``table`` (which stays yours to close)."""
    config = config or DashboardConfig.from_env()
    identity = identity or Identity(table)
    dash = Dashboard(
        ops=operations or Operations(table, remote=True),
        identity=identity,
        sessions=Sessions(identity, lifetime=config.session_lifetime),
        config=config,
        env=environment(),
    )

    def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        titles = {404: "Not found", 405: "Method not allowed"}
        messages = {
            404: "There is no page at this address.",
            405: "This page does not take that method (actions are forms: POST).",
        }
        html = render(
            dash.env,
            "error.html",
            {
                "root": root_of(request),
                "user": None,
                "can_act": False,
                "csrf": "",
                "flash": [],
                "here": "",
                "refresh_ms": 0,
                "nav": "",
                "title": titles.get(status, "Error"),
                "message": messages.get(status, "This request could not be served."),
            },
        )
        return HTMLResponse(html, status_code=status)

    app = Starlette(
        routes=_routes(dash),
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={HTTPException: not_found},
    )
    app.state.dashboard = dash
    return app
