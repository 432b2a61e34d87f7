"""Bad bodies and parameters: each gets a 4xx with a JSON error, and nothing changes.
A 10 MB body is refused with 413 before it is read."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest

from .conftest import ECHO, Server

OK = {"handler": ECHO, "args": {"x": 1}}


def _with_args(args: str, more: str = "") -> str:
    """A body written by hand, for what json.dumps would never write."""
    return '{"handler": ' + json.dumps(ECHO) + ', "args": ' + args + more + "}"


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# (label, JSON text or bytes, expected status)
BAD_TASKS: list[tuple[str, str | bytes, int]] = [
    ("not JSON", "{", 400),
    ("empty", "", 400),
    ("NaN", _with_args('{"x": NaN}'), 400),
    ("Infinity", _with_args("[Infinity]"), 400),
    ("-Infinity", _with_args("[-Infinity]"), 400),
    ("overflowing float", _with_args("[1e999]"), 400),
    ("5,000-digit integer", _with_args(f"[{'9' * 5000}]"), 400),
    ("duplicate key", _with_args("{}", ', "handler": "os:system"'), 400),
    ("nested 10,000 deep", _with_args(_nested(10_000)), 400),
    ("args nested 65 deep", _with_args(_nested(65)), 422),
    ("not UTF-8", b'{"handler": "\xff\xfe"}', 400),
    ("unpaired surrogate", _with_args("{}", ', "name": "\\ud800"'), 400),
    ("array body", "[]", 422),
    ("string body", '"tests.support.handlers:Echo"', 422),
    ("no handler", '{"args": {}}', 422),
    ("handler not a path", '{"handler": "os.system; rm -rf /"}', 422),
    ("handler too long", json.dumps({"handler": "a." + "b" * 300}), 422),
    ("args a string", json.dumps({"handler": ECHO, "args": "{}"}), 422),
    ("args a number", json.dumps({"handler": ECHO, "args": 3}), 422),
    ("args null", json.dumps({"handler": ECHO, "args": None}), 422),
    ("unknown field", json.dumps({**OK, "status": "success"}), 422),
    ("name empty", json.dumps({**OK, "name": ""}), 422),
    ("name blank", json.dumps({**OK, "name": "   "}), 422),
    ("name 256 characters", json.dumps({**OK, "name": "n" * 256}), 422),
    ("name with NUL", json.dumps({**OK, "name": "a\u0000b"}), 422),
    ("queue with a space", json.dumps({**OK, "queue": "a b"}), 422),
    ("queue 101 characters", json.dumps({**OK, "queue": "q" * 101}), 422),
    ("priority too high", json.dumps({**OK, "priority": 101}), 422),
    ("priority a string", json.dumps({**OK, "priority": "1"}), 422),
    ("priority true", json.dumps({**OK, "priority": True}), 422),
    ("priority 1.5", json.dumps({**OK, "priority": 1.5}), 422),
    ("max_attempts 0", json.dumps({**OK, "max_attempts": 0}), 422),
    ("timeout 0", json.dumps({**OK, "timeout": 0}), 422),
    ("delay negative", json.dumps({**OK, "delay": -1}), 422),
    ("delay over a year", json.dumps({**OK, "delay": 10**12}), 422),
    ("run_at not a time", json.dumps({**OK, "run_at": "tomorrow"}), 422),
    ("run_at and delay", json.dumps({**OK, "run_at": "2030-01-01T00:00:00Z", "delay": 5}), 422),
    ("unique_key empty", json.dumps({**OK, "unique_key": ""}), 422),
    ("unique_key 256", json.dumps({**OK, "unique_key": "k" * 256}), 422),
    ("args over the limit", json.dumps({"handler": ECHO, "args": ["x" * (1024 * 1024 + 10)]}), 422),
]


@pytest.mark.parametrize(("label", "body", "status"), BAD_TASKS, ids=[b[0] for b in BAD_TASKS])
def test_bad_task_bodies_are_refused(
    server: Server, label: str, body: str | bytes, status: int
) -> None:
    client = server.client("operator")
    before = server.checksum()
    data = body.encode() if isinstance(body, str) else body
    response = client.post("/tasks", content=data, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] and error["message"].endswith((".", ")")), error
    assert server.checksum() == before


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"],
)
def test_only_json_bodies(server: Server, content_type: str | None) -> None:
    before = server.checksum()
    headers = {"Content-Type": content_type} if content_type else {}
    response = server.client("operator").post("/tasks", content=json.dumps(OK), headers=headers)
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"
    assert server.checksum() == before


BAD_OTHER: list[tuple[str, str, Any]] = [
    ("PATCH", "/tasks/{id}", {}),
    ("PATCH", "/tasks/{id}", {"status": "success"}),
    ("PATCH", "/tasks/{id}", {"args": {"x": 2}}),
    ("PATCH", "/tasks/{id}", {"priority": 1000}),
    ("PATCH", "/tasks/{id}", {"run_at": None}),
    ("POST", "/tasks/bulk/delete", {}),
    ("POST", "/tasks/bulk/delete", {"ids": []}),
    ("POST", "/tasks/bulk/delete", {"ids": ["1"]}),
    ("POST", "/tasks/bulk/delete", {"ids": [0]}),
    ("POST", "/tasks/bulk/delete", {"ids": [2**63]}),
    ("POST", "/tasks/bulk/delete", {"ids": [1], "filter": {}}),
    ("POST", "/tasks/bulk/cancel", {"filter": {"status": ["nope"]}}),
    ("POST", "/tasks/bulk/cancel", {"filter": {"id": 1}}),
    ("POST", "/tasks/bulk/cancel", {"filter": {}, "limit": 1001}),
    ("POST", "/tasks/bulk/retry", {"filter": {"queue": "default"}}),
]


@pytest.mark.parametrize(("method", "path", "body"), BAD_OTHER)
def test_bad_patch_and_bulk_bodies(
    server: Server, sample: dict[str, int], method: str, path: str, body: Any
) -> None:
    before = server.checksum()
    url = path.replace("{id}", str(sample["pending"]))
    response = server.client("operator").request(method, url, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_input"
    assert server.checksum() == before


BAD_QUERIES: list[tuple[str, list[tuple[str, str]]]] = [
    ("unknown sort field", [("sort", "password")]),
    ("sort by a column outside the allowlist", [("sort", "-claim_token")]),
    ("sort with SQL", [("sort", "id; DROP TABLE tasktable_task")]),
    ("limit 0", [("limit", "0")]),
    ("limit over the page size", [("limit", "501")]),
    ("limit not a number", [("limit", "ten")]),
    ("limit twice", [("limit", "1"), ("limit", "2")]),
    ("unknown status", [("status", "done")]),
    ("created_after not a time", [("created_after", "yesterday")]),
    ("unknown parameter", [("stauts", "error")]),
    ("NUL in name", [("name", "a\u0000")]),
    ("garbage cursor", [("cursor", "!!!")]),
    ("handler not a path", [("handler", "' OR 1=1 --")]),
    ("queue with SQL", [("queue", "' OR 1=1 --")]),
]


@pytest.mark.parametrize(("label", "params"), BAD_QUERIES, ids=[q[0] for q in BAD_QUERIES])
def test_bad_query_parameters(server: Server, label: str, params: list[tuple[str, str]]) -> None:
    response = server.client("viewer").get("/tasks", params=params)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] in ("invalid_input", "invalid_cursor")


def test_bad_path_parameters(server: Server) -> None:
    client = server.client("viewer")
    assert client.get("/tasks/0").status_code == 422
    assert client.get(f"/tasks/{2**63}").status_code == 422
    assert client.get("/tasks/abc").status_code == 404
    assert client.get("/tasks/-1").status_code == 404
    assert client.get("/stats", params={"buckets": "100000"}).status_code == 422


def _raw_request(server: Server, head: str, first: bytes, more: int) -> tuple[int, float, int]:
    """Send a request head and the start of a body, then keep sending up to ``more`` bytes
    while no answer comes; returns (status, seconds to the answer, body bytes sent)."""
    host, port = server.base.removeprefix("http://").split(":")
    started = time.monotonic()
    sent = 0
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode() + first)
        sent += len(first)
        sock.setblocking(False)
        chunk = b"x" * 65536
        answer = b""
        while time.monotonic() - started < 10:
            try:
                answer += sock.recv(65536)
                if b"\r\n\r\n" in answer:
                    break
            except BlockingIOError:
                pass
            if sent < more:
                try:
                    sent += sock.send(chunk)
                except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                    time.sleep(0.01)
            else:
                time.sleep(0.01)
    elapsed = time.monotonic() - started
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
    return status, elapsed, sent


def test_ten_megabytes_are_refused_before_being_read(server: Server) -> None:
    before = server.checksum()
    size = 10 * 1024 * 1024
    head = (
        "POST /api/v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {server.tokens['operator']}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
    )
    status, elapsed, sent = _raw_request(server, head, b'{"handler": "', more=0)
    assert status == 413
    assert elapsed < 2.0
    assert sent < 100  # answered on the Content-Length alone
    assert server.checksum() == before


def test_a_chunked_body_is_counted_while_it_streams(server: Server) -> None:
    before = server.checksum()
    head = (
        "POST /api/v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {server.tokens['operator']}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    # One 10 MB chunk, sent piece by piece: the server stops reading past its limit.
    size = 10 * 1024 * 1024
    status, elapsed, sent = _raw_request(server, head, f"{size:x}\r\n".encode(), more=size)
    assert status == 413
    assert elapsed < 5.0
    assert sent < size
    assert server.checksum() == before
    assert server.client(role=None).get("/health").status_code == 200
