"""The REST API under ``/api/v1``: :func:`create_app` returns a Starlette ASGI app."""

from .app import API_PREFIX, create_app

__all__ = ["API_PREFIX", "create_app"]
