"""tasktable for FastAPI and Starlette: the TaskTable as a dependency, and the dashboard
and REST API mounted behind your app's own authentication.

.. code-block:: python

    table = TaskTable("postgresql://app@db/app")
    app = FastAPI(lifespan=lifespan(table))          # closes the table at shutdown
    bind(app, table)                                  # app.state.tasktable

    @app.post("/orders/export")
    def export(tasks: TaskTableDep) -> dict[str, int]:
        return {"task": tasks.enqueue("shop.tasks:ExportOrders", {}).id}

    app.mount("/tasks", tasktable_app(table, authorize=is_staff))

``get_table(request)`` (what ``TaskTableDep`` depends on) needs only Starlette;
``TaskTableDep`` exists when FastAPI is installed.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ...app import TaskTable

if TYPE_CHECKING:
    from ...dashboard.config import DashboardConfig

STATE_KEY = "tasktable"

#: ``authorize(request)`` (sync or async) runs before every request to the
#: mounted dashboard and API, with the scope your middleware filled in
#: (``request.user``, ``request.session``...): True lets it through, a Response
#: is sent as it is (e.g. a redirect to your login page), anything else is a 403.
Authorize = Callable[[Request], bool | Response | Awaitable[bool | Response]]


def bind(app: Any, table: TaskTable) -> TaskTable:
    """Make ``table`` the app's TaskTable (``app.state.tasktable``); returns it."""
    setattr(app.state, STATE_KEY, table)
    return table


def get_table(request: Request) -> TaskTable:
    """The app's TaskTable: a FastAPI dependency (``Depends(get_table)``), or call it."""
    table = getattr(request.app.state, STATE_KEY, None)
    if not isinstance(table, TaskTable):
        raise RuntimeError("No TaskTable on this app: call bind(app, table) first.")
    return table


def lifespan(table: TaskTable) -> Callable[[Any], contextlib.AbstractAsyncContextManager[None]]:
    """A lifespan that binds ``table`` at startup and closes it at shutdown.

    It opens the table at startup too: on SQLite, the embedded default creates
    its tables on first use, under the write lock, which must not happen inside
    a request's transaction on the same file (``enqueue(connection=...)``).
    """

    @contextlib.asynccontextmanager
    async def run(app: Any) -> AsyncIterator[None]:
        bind(app, table)
        await run_in_threadpool(lambda: table.storage)
        try:
            yield
        finally:
            table.close()

    return run


def protect(app: ASGIApp, authorize: Authorize) -> ASGIApp:
    """``app`` behind ``authorize`` (see :data:`Authorize`); lifespan events pass through."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            verdict: Any = authorize(Request(scope, receive))
            if inspect.isawaitable(verdict):
                verdict = await verdict
            if verdict is not True:
                refusal = verdict if isinstance(verdict, Response) else _forbidden()
                await refusal(scope, receive, send)
                return
        elif scope["type"] == "websocket":  # tasktable serves none: refuse rather than guess
            await send({"type": "websocket.close", "code": 1008})
            return
        await app(scope, receive, send)

    return guarded


def _forbidden() -> Response:
    return PlainTextResponse("Forbidden", status_code=403)


def tasktable_app(
    table: TaskTable,
    *,
    authorize: Authorize | None = None,
    dashboard: DashboardConfig | None = None,
) -> ASGIApp:
    """The dashboard (at ``/``) and REST API (``/api/v1``) to ``app.mount(prefix, ...)``.

    Their own login (``tasktable user add``) and bearer tokens still apply;
    ``authorize`` puts your app's authentication in front of both. The table
    stays yours to close.
    """
    from ...web import create_app

    inner: ASGIApp = create_app(table, dashboard=dashboard)
    return protect(inner, authorize) if authorize is not None else inner


try:
    from fastapi import Depends
except ImportError:  # plain Starlette: call get_table(request)
    pass
else:
    #: A route parameter ``tasks: TaskTableDep`` receives the app's TaskTable.
    TaskTableDep = Annotated[TaskTable, Depends(get_table)]


__all__ = [
    "Authorize",
    "TaskTableDep",
    "bind",
    "get_table",
    "lifespan",
    "protect",
    "tasktable_app",
]
