"""tasktable for Flask: the TaskTable bound to the app, the notice as a flash, the
dashboard and REST API mounted under a URL prefix.

.. code-block:: python

    app = Flask(__name__)
    app.config["TASKTABLE_DATABASE_URL"] = "sqlite:///var/shop.sqlite3"
    app.config["TASKTABLE_URL_PREFIX"] = "/tasks"        # dashboard at /tasks/, API at /tasks/api/v1
    tasks = TaskTableExtension(app)

    @app.post("/orders/export")
    def export():
        task = tasks.table.enqueue("shop.tasks:ExportOrders", {})
        flash_background_notice(task)
        return redirect(url_for("orders"))

Config keys (all optional): ``TASKTABLE_DATABASE_URL`` (else the
``TASKTABLE_DATABASE_URL`` variable, else the SQLite default),
``TASKTABLE_URL_PREFIX`` (mount the dashboard and the API there; unset: not
mounted), ``TASKTABLE_DASHBOARD_URL`` (where notices link to; default: the
prefix when mounted, else ``TASKTABLE_DASHBOARD_URL`` or
``http://127.0.0.1:8080``).

The dashboard and API are ASGI apps; Flask is WSGI. They are mounted through
`a2wsgi <https://pypi.org/project/a2wsgi/>`_'s ``ASGIMiddleware`` under
Werkzeug's ``DispatcherMiddleware``: ``pip install 'tasktable[flask]'``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app, flash
from markupsafe import Markup
from werkzeug.wrappers import Response as WerkzeugResponse

from ...app import TaskTable
from ...core.task import Task
from ...notice import Notice
from ...settings import Settings

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from ...dashboard.config import DashboardConfig

EXTENSION_KEY = "tasktable"

#: ``authorize()`` runs in a Flask request context of the app (``flask.session``,
#: Flask-Login's ``current_user``... work) before any dashboard or API request:
#: True lets it through, False answers 403, a Response is sent as it is
#: (e.g. a redirect to your login page).
Authorize = Callable[[], Any]


class TaskTableExtension:
    """Binds a :class:`~tasktable.TaskTable` to a Flask app (``app.extensions["tasktable"]``)."""

    def __init__(
        self,
        app: Flask | None = None,
        *,
        table: TaskTable | None = None,
        authorize: Authorize | None = None,
        dashboard: DashboardConfig | None = None,
    ) -> None:
        self._table = table
        self.authorize = authorize
        self.dashboard = dashboard
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        prefix = _prefix(app.config.get("TASKTABLE_URL_PREFIX"))
        table = self._table or self._make_table(app, prefix)
        app.extensions[EXTENSION_KEY] = table
        if table.url.startswith("sqlite"):
            # The embedded default makes its file and tables on first use, which takes
            # SQLite's write lock: do it now, not inside a request's transaction on the
            # same file (enqueue(connection=...)), where it would wait for that lock.
            _ = table.storage
        if prefix:
            mount(
                app,
                prefix,
                table,
                authorize=self.authorize,
                dashboard=self.dashboard,
            )

    @staticmethod
    def _make_table(app: Flask, prefix: str | None) -> TaskTable:
        settings = Settings.from_env()
        url = app.config.get("TASKTABLE_DATABASE_URL")
        if url:
            settings = settings.replace(database_url=url)
        link = app.config.get("TASKTABLE_DASHBOARD_URL") or prefix
        if link:
            settings = settings.replace(dashboard_url=link)
        return TaskTable(settings=settings)

    @property
    def table(self) -> TaskTable:
        """The TaskTable of the current app (inside an app or request context)."""
        return get_table()


def get_table(app: Flask | None = None) -> TaskTable:
    """The TaskTable bound to ``app`` (default: the current app)."""
    target = app or current_app
    try:
        table: TaskTable = target.extensions[EXTENSION_KEY]
    except KeyError:
        raise RuntimeError(
            "No TaskTable on this Flask app: call TaskTableExtension(app) first."
        ) from None
    return table


def flash_background_notice(
    task: Task, *, category: str = "info", table: TaskTable | None = None
) -> Notice:
    """The seed's ``addBackgroundTaskNotice`` as a Flask flash: '"<name>" will run in the
    background (task #N).' with a link to the task in the dashboard.

    The message is ``Markup`` (:meth:`Notice.html` escapes the name), so
    ``{{ message }}`` renders the link. Returns the :class:`~tasktable.Notice`.
    """
    notice = (table or get_table()).notice(task)
    flash(Markup(notice.html()), category)  # safe: Notice.html() escapes its parts
    return notice


def _prefix(value: Any) -> str | None:
    if not value:
        return None
    text = "/" + str(value).strip("/")
    return None if text == "/" else text


def mount(
    app: Flask,
    prefix: str,
    table: TaskTable,
    *,
    authorize: Authorize | None = None,
    dashboard: DashboardConfig | None = None,
) -> None:
    """Serve tasktable's dashboard and REST API under ``prefix`` of the Flask app.

    Requests under the prefix never reach Flask's views: Werkzeug's
    ``DispatcherMiddleware`` hands them to the ASGI app through a2wsgi. The
    dashboard's own login (``tasktable user add``) and the API's bearer tokens
    still apply; ``authorize`` puts your app's check in front of both.
    """
    try:
        from a2wsgi import ASGIMiddleware
    except ImportError:
        raise RuntimeError(
            "Mounting tasktable's dashboard in Flask needs a2wsgi: pip install 'tasktable[flask]'."
        ) from None
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    from ...web import create_app

    asgi: Any = create_app(table, dashboard=dashboard)  # a2wsgi types ASGI apps its own way
    inner: WSGIApplication = ASGIMiddleware(asgi)  # type: ignore[assignment]  # a2wsgi's Environ type is its own
    if authorize is not None:
        inner = _guard(app, inner, authorize)
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {prefix: inner})  # type: ignore[method-assign]  # Flask's documented way to wrap the WSGI app


def _guard(app: Flask, inner: WSGIApplication, authorize: Authorize) -> WSGIApplication:
    def guarded(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        with app.request_context(environ):
            verdict = authorize()
            if inspect.isawaitable(verdict):
                raise TypeError("authorize() for Flask must be a plain function, not async.")
            if verdict is True:
                response = None
            elif isinstance(verdict, WerkzeugResponse):
                response = verdict
            else:  # False, None, or anything that is not a clear yes
                response = app.response_class("Forbidden", status=403, mimetype="text/plain")
        if response is None:
            return inner(environ, start_response)
        return response(environ, start_response)

    return guarded


__all__ = ["TaskTableExtension", "flash_background_notice", "get_table", "mount"]
