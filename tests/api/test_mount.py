"""create_app(table) mounted under a prefix of the user's own Starlette app (in process)."""

from __future__ import annotations

import asyncio

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount

from tasktable import TaskTable
from tasktable.api import create_app
from tasktable.auth import Identity
from tasktable.core.handlers import Allowlist
from tasktable.settings import Settings

from .conftest import ECHO


def test_mounted_under_a_prefix(sqlite_url: str, settings: Settings) -> None:
    allowed = settings.replace(handlers=Allowlist.parse(ECHO))
    with TaskTable(sqlite_url, settings=allowed) as table:
        _, secret = Identity(table).create_token("mounted", "operator")
        app = Starlette(routes=[Mount("/tasks-admin", app=create_app(table))])
        created = asyncio.run(_exercise(app, secret))
        assert table.get(created).status.value == "pending"  # the table stays open and ours


async def _exercise(app: Starlette, secret: str) -> int:
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {secret}"}
    base = "/tasks-admin/api/v1"
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await client.get(f"{base}/health")).json()["status"] == "ok"
        created = await client.post(f"{base}/tasks", json={"handler": ECHO}, headers=headers)
        assert created.status_code == 201, created.text
        task_id = int(created.json()["id"])
        assert created.headers["location"] == f"{base}/tasks/{task_id}"
        document = (await client.get(f"{base}/openapi.json", headers=headers)).json()
        assert document["servers"] == [{"url": "/tasks-admin"}]
        listed = (await client.get(f"{base}/tasks", headers=headers)).json()
        assert listed["tasks"][0]["id"] == task_id
        assert (await client.get("/api/v1/health")).status_code == 404  # only under the prefix
    return task_id
