"""The FastAPI/Starlette integration, through the code of docs/fastapi.md: the
dependency, enqueue in the route's transaction, and the mount behind authorize."""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="FastAPI is not installed (pip install -e '.[dev]')")

with warnings.catch_warnings():
    # Starlette 1.x prefers httpx2 for its TestClient and warns once at import; the
    # project's dev dependency is httpx, which the TestClient still drives fine.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient
from sqlalchemy import create_engine, text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

from tasktable import TaskStatus, TaskTable
from tasktable.auth import Identity
from tasktable.contrib.fastapi import bind, get_table, lifespan, protect

from ..conftest import burst_worker, free_port, http, serve, stop

SERVERS = pytest.mark.parametrize("server_url", ["sqlite", "postgresql"], indirect=True)
STAFF = {"x-staff": "s3cret"}


@pytest.fixture
def myapi(
    docs_package: Callable[[str], Path], server_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModuleType]:
    code = docs_package("docs/fastapi.md")
    with TaskTable(server_url) as table:
        table.migrate()  # a server database is migrated once, by hand
    engine = create_engine(server_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE orders (id INTEGER PRIMARY KEY, invoice_task BIGINT)"))
        conn.execute(text("INSERT INTO orders (id) VALUES (1)"))
    engine.dispose()
    monkeypatch.setenv("MYAPI_DATABASE_URL", server_url)
    monkeypatch.setenv("MYAPI_STAFF_SECRET", STAFF["x-staff"])
    import myapi.main

    myapi.main.code_root = code  # type: ignore[attr-defined]
    yield myapi.main
    myapi.main.engine.dispose()


@pytest.fixture
def client(myapi: ModuleType) -> Iterator[TestClient]:
    with TestClient(myapi.app) as test_client:
        yield test_client


def invoice_task(url: str) -> Any:
    engine = create_engine(url)
    with engine.connect() as conn:
        value = conn.execute(text("SELECT invoice_task FROM orders WHERE id = 1")).scalar()
    engine.dispose()
    return value


@SERVERS
def test_route_enqueues_in_its_transaction_and_a_worker_runs_it(
    myapi: ModuleType, client: TestClient, server_url: str, subprocess_env: dict[str, str]
) -> None:
    response = client.post("/orders/1/invoice")
    assert response.status_code == 200
    task_id = response.json()["task"]
    assert invoice_task(server_url) == task_id
    burst_worker(server_url, subprocess_env, myapi.code_root)
    done = myapi.table.get(task_id)
    assert done.status is TaskStatus.SUCCESS
    assert [m.text for m in done.messages] == ["Invoice for order 1 sent."]


@SERVERS
def test_route_that_raises_rolls_the_task_back(myapi: ModuleType, client: TestClient) -> None:
    response = client.post("/orders/999/invoice")
    assert response.status_code == 404
    assert response.json() == {"detail": "No such order."}
    assert myapi.table.count() == 0


@SERVERS
def test_mount_is_behind_the_apps_authentication(myapi: ModuleType, client: TestClient) -> None:
    assert client.get("/tasks/api/v1/health").status_code == 403
    assert client.get("/tasks/").status_code == 403
    assert client.get("/tasks/api/v1/health", headers=STAFF).status_code == 200
    page = client.get("/tasks/", headers=STAFF, follow_redirects=False)
    assert page.status_code in (302, 303)
    assert page.headers["location"].startswith("/tasks/login")
    assert client.get("/tasks/api/v1/tasks", headers=STAFF).status_code == 401
    task = myapi.table.enqueue("myapi.tasks:SendInvoice", {"order_id": 1})
    _, secret = Identity(myapi.table).create_token("fastapi-test", "viewer")
    listed = client.get(
        "/tasks/api/v1/tasks", headers={**STAFF, "Authorization": f"Bearer {secret}"}
    )
    assert listed.status_code == 200
    assert [t["id"] for t in listed.json()["tasks"]] == [task.id]


def test_starlette_app_without_fastapi(sqlite_url: str) -> None:
    table = TaskTable(sqlite_url)

    async def count(request: Request) -> Response:
        return JSONResponse({"tasks": get_table(request).count()})

    async def inner(request: Request) -> Response:
        return PlainTextResponse("inner")

    async def to_login(request: Request) -> Response:
        return RedirectResponse("/login")

    async def refuse_async(request: Request) -> bool | Response:
        if request.headers.get("x-ok"):
            return True
        return RedirectResponse("/login")

    app = Starlette(
        routes=[
            Route("/count", count),
            Mount("/guarded", app=protect(Starlette(routes=[Route("/", inner)]), refuse_async)),
        ],
        lifespan=lifespan(table),
    )
    with TestClient(app) as client:
        assert client.get("/count").json() == {"tasks": 0}
        denied = client.get("/guarded/", follow_redirects=False)
        assert (denied.status_code, denied.headers["location"]) == (307, "/login")
        assert client.get("/guarded/", headers={"x-ok": "1"}).text == "inner"
    assert table._storage is None  # closed by the lifespan


def test_get_table_needs_bind(sqlite_url: str) -> None:
    async def route(request: Request) -> Response:
        get_table(request)
        return PlainTextResponse("unreachable")

    app = Starlette(routes=[Route("/", route)])
    with (
        TestClient(app, raise_server_exceptions=True) as client,
        pytest.raises(RuntimeError, match="bind"),
    ):
        client.get("/")
    table = TaskTable(sqlite_url)
    assert bind(app, table) is table and app.state.tasktable is table
    table.close()


def test_served_by_uvicorn(
    docs_package: Callable[[str], Path], sqlite_url: str, subprocess_env: dict[str, str]
) -> None:
    code = docs_package("docs/fastapi.md")
    table = TaskTable(sqlite_url)
    table.migrate()
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE orders (id INTEGER PRIMARY KEY, invoice_task BIGINT)"))
        conn.execute(text("INSERT INTO orders (id) VALUES (1)"))
    engine.dispose()
    port = free_port()
    env = dict(subprocess_env, MYAPI_DATABASE_URL=sqlite_url, MYAPI_STAFF_SECRET=STAFF["x-staff"])
    env["PYTHONPATH"] = os.pathsep.join([str(code), env["PYTHONPATH"]])
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "uvicorn", "myapi.main:app", "--port", str(port)]
    server = serve(command, env, base + "/tasks/api/v1/health")
    try:
        status, body = http("POST", base + "/orders/1/invoice")
        assert status == 200
        task_id = json.loads(body)["task"]
        assert http("POST", base + "/orders/2/invoice")[0] == 404
        assert http("GET", base + "/tasks/api/v1/health")[0] == 403
        assert http("GET", base + "/tasks/api/v1/health", **STAFF)[0] == 200
        burst_worker(sqlite_url, subprocess_env, code)
        assert table.get(task_id).status is TaskStatus.SUCCESS
        assert table.count() == 1
    finally:
        stop(server)
        table.close()
