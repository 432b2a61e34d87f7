"""The admin dashboard: the seed's "Background Tasks -> View Tasks" grid and more.

Server-rendered (Jinja2, autoescaped), with a small vendored script for live
refresh; a client of :mod:`tasktable.ops`, like the REST API. Served by
``tasktable serve`` at ``/``; see :func:`tasktable.web.create_app` to mount it.
"""

from .app import create_dashboard
from .config import DashboardConfig

__all__ = ["DashboardConfig", "create_dashboard"]
