"""Every route refuses a missing or bad token (401) and a viewer on a write (403),
and a refused request changes nothing in the task table."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

from tasktable import TaskTable
from tasktable.auth import Identity

from .conftest import ECHO, Server, attach

# (method, path, JSON body, writes?) with {id} an existing task that has a file.
ROUTES: list[tuple[str, str, Any, bool]] = [
    ("GET", "/openapi.json", None, False),
    ("GET", "/tasks", None, False),
    ("GET", "/tasks/{id}", None, False),
    ("GET", "/tasks/{id}/files", None, False),
    ("GET", "/tasks/{id}/files/report.csv", None, False),
    ("GET", "/stats", None, False),
    ("POST", "/tasks", {"handler": ECHO, "args": {"x": 1}}, True),
    ("PATCH", "/tasks/{id}", {"name": "changed"}, True),
    ("DELETE", "/tasks/{id}", None, True),
    ("POST", "/tasks/{id}/retry", None, True),
    ("POST", "/tasks/{id}/cancel", None, True),
    ("POST", "/tasks/bulk/retry", {"filter": {}}, True),
    ("POST", "/tasks/bulk/cancel", {"filter": {}}, True),
    ("POST", "/tasks/bulk/delete", {"filter": {}}, True),
]


def _send(
    server: Server, method: str, path: str, body: Any, task_id: int, headers: dict[str, str]
) -> httpx.Response:
    url = server.api + path.replace("{id}", str(task_id))
    return httpx.request(method, url, json=body, headers=headers, timeout=30)


@pytest.fixture
def target(server: Server, queue: str) -> int:
    """A pending task with a file: every route has something real to act on."""
    with TaskTable(server.db_url) as table:
        task = table.enqueue(ECHO, {"secret": "do not touch"}, queue=queue)
    attach(server.db_url, task.id, "report.csv", b"a,b\n")
    return task.id


def _bad_credentials(server: Server) -> dict[str, dict[str, str]]:
    admin = server.tokens["admin"]
    flipped = admin[:-1] + ("A" if admin[-1] != "A" else "B")
    return {
        "none": {},
        "empty bearer": {"Authorization": "Bearer"},
        "not a token": {"Authorization": "Bearer nope"},
        "unknown token": {"Authorization": f"Bearer tt_{secrets.token_urlsafe(32)}"},
        "one character off": {"Authorization": f"Bearer {flipped}"},
        "basic scheme": {"Authorization": f"Basic {admin}"},
        "token without scheme": {"Authorization": admin},
        "sql in token": {"Authorization": "Bearer ' OR 1=1 --"},
    }


@pytest.mark.parametrize(("method", "path", "body", "writes"), ROUTES)
def test_no_token_or_a_bad_one_is_401_and_changes_nothing(
    server: Server, target: int, method: str, path: str, body: Any, writes: bool
) -> None:
    before = server.checksum()
    for label, headers in _bad_credentials(server).items():
        response = _send(server, method, path, body, target, headers)
        assert response.status_code == 401, (label, response.text)
        assert response.json()["error"]["code"] == "unauthorized", label
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert server.checksum() == before, label


@pytest.mark.parametrize(("method", "path", "body", "writes"), [r for r in ROUTES if r[3]])
def test_viewer_may_not_write(
    server: Server, target: int, method: str, path: str, body: Any, writes: bool
) -> None:
    before = server.checksum()
    headers = {"Authorization": f"Bearer {server.tokens['viewer']}"}
    response = _send(server, method, path, body, target, headers)
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "forbidden"
    assert "viewer" in response.json()["error"]["message"]
    assert server.checksum() == before


def test_every_role_reads_and_the_checksum_sees_a_write(server: Server, target: int) -> None:
    for role in ("viewer", "operator", "admin"):
        headers = {"Authorization": f"Bearer {server.tokens[role]}"}
        for method, path, body, writes in ROUTES:
            if not writes:
                response = _send(server, method, path, body, target, headers)
                assert response.status_code == 200, (role, path, response.text)
    before = server.checksum()
    headers = {"Authorization": f"Bearer {server.tokens['operator']}"}
    assert _send(server, "DELETE", "/tasks/{id}", None, target, headers).status_code == 204
    assert server.checksum() != before  # the checksum would notice a refused write that wrote


def test_a_revoked_token_stops_working_at_once(server: Server) -> None:
    name = f"temp-{secrets.token_hex(3)}"
    with TaskTable(server.db_url) as table:
        _, secret = Identity(table).create_token(name, "viewer")
    headers = {"Authorization": f"Bearer {secret}"}
    assert httpx.get(f"{server.api}/tasks", headers=headers).status_code == 200
    with TaskTable(server.db_url) as table:
        Identity(table).revoke_token(name)
    assert httpx.get(f"{server.api}/tasks", headers=headers).status_code == 401


def test_health_is_the_only_open_route(server: Server) -> None:
    document = server.client("viewer").get("/openapi.json").json()
    open_routes = [
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method, op in item.items()
        if op.get("security") == []
    ]
    assert open_routes == ["GET /api/v1/health"]
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
