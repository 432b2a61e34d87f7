"""The whole web server of ``tasktable serve``: the REST API and the dashboard, one app.

Mount it in your own Starlette or FastAPI application under any prefix::

    from tasktable import TaskTable
    from tasktable.web import create_app

    table = TaskTable("postgresql://app@db/app")
    app.mount("/tasks-admin", create_app(table))
    # dashboard at /tasks-admin/, API at /tasks-admin/api/v1/

Both share one :class:`~tasktable.TaskTable`, one identity (users, tokens,
roles) and one operations layer.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.routing import Mount

from .api import create_app as create_api_app
from .app import TaskTable
from .auth.service import Identity
from .dashboard import DashboardConfig, create_dashboard


def create_app(
    table: TaskTable | None = None,
    *,
    identity: Identity | None = None,
    dashboard: DashboardConfig | None = None,
    debug: bool = False,
) -> Starlette:
    """The REST API under ``/api/v1`` and the dashboard at ``/``.

    ``table`` defaults to ``TaskTable()`` from the environment, closed when the
    app shuts down; a table you pass stays yours to close. ``dashboard``
    defaults to :meth:`DashboardConfig.from_env`.
    """
    owned = table is None
    table_ref = table if table is not None else TaskTable()
    identity = identity or Identity(table_ref)
    ui = create_dashboard(table_ref, identity=identity, config=dashboard)
    app = create_api_app(
        table_ref, identity=identity, extra_routes=[Mount("/", app=ui)], debug=debug
    )
    if owned:
        inner = app.router.lifespan_context

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            try:
                async with inner(app):
                    yield
            finally:
                table_ref.close()

        app.router.lifespan_context = lifespan
    return app


__all__ = ["create_app"]
