"""A synchronous client for an ASGI app: httpx over ASGITransport, driven through an
anyio blocking portal (Starlette's TestClient warns when used with httpx)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio.from_thread
import httpx


class TestClient:
    """``get``/``post`` like httpx.Client, against ``app`` in-process; keeps cookies."""

    __test__ = False  # not a test class

    def __init__(self, app: Any, base_url: str = "http://testserver", **options: Any) -> None:
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=base_url, **options
        )

    @property
    def cookies(self) -> httpx.Cookies:
        return self._client.cookies

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        with _portal() as portal:
            return portal.call(lambda: self._client.request(method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)


@contextmanager
def _portal() -> Iterator[anyio.from_thread.BlockingPortal]:
    with anyio.from_thread.start_blocking_portal() as portal:
        yield portal
