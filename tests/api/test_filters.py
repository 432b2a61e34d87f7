"""Filters are bound as parameters: %, _, quotes and SQL match literally, nothing more."""

from __future__ import annotations

import json

import pytest

from tasktable import TaskTable

from .conftest import ECHO, Server

NAMES = [
    "100% done",
    "100 done",
    "a_b",
    "axb",
    "O'Brien",
    'say "hi"',
    "' OR 1=1 --",
    "back\\slash",
    "plain",
    "'; DROP TABLE tasktable_task; --",
]


def _args_text(name: str) -> str:
    return json.dumps({"label": name}, ensure_ascii=False, separators=(",", ":"))


@pytest.fixture
def named(server: Server, queue: str) -> dict[str, int]:
    with TaskTable(server.db_url) as table:
        return {n: table.enqueue(ECHO, {"label": n}, name=n, queue=queue).id for n in NAMES}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("%", ["100% done"]),
        ("_", ["a_b", "'; DROP TABLE tasktable_task; --"]),
        ("'", ["O'Brien", "' OR 1=1 --", "'; DROP TABLE tasktable_task; --"]),
        ('"', ['say "hi"']),
        ("' OR 1=1 --", ["' OR 1=1 --"]),
        ("\\", ["back\\slash"]),
        ("'; DROP TABLE tasktable_task; --", ["'; DROP TABLE tasktable_task; --"]),
        ("%%", []),
        ("a%b", []),
    ],
)
def test_name_and_search_match_literally(
    server: Server, named: dict[str, int], queue: str, text: str, expected: list[str]
) -> None:
    client = server.client("viewer")
    # search also looks in the handler path and the args' JSON text
    searched = [n for n in NAMES if text.lower() in (n + ECHO + _args_text(n)).lower()]
    for field, wanted in (("name", expected), ("search", searched)):
        response = client.get("/tasks", params={field: text, "queue": queue, "sort": "id"})
        assert response.status_code == 200, response.text
        found = [t["name"] for t in response.json()["tasks"]]
        assert sorted(found) == sorted(wanted), (field, text)
    assert len(client.get("/tasks", params={"queue": queue, "limit": 500}).json()["tasks"]) == len(
        NAMES
    )


def test_bulk_filter_matches_literally_too(
    server: Server, named: dict[str, int], queue: str
) -> None:
    client = server.client("operator")
    response = client.post(
        "/tasks/bulk/cancel", json={"filter": {"name": "' OR 1=1 --", "queue": [queue]}}
    )
    assert response.status_code == 200, response.text
    assert response.json()["ids"] == [named["' OR 1=1 --"]]
    response = client.post("/tasks/bulk/cancel", json={"filter": {"name": "%", "queue": [queue]}})
    assert response.json()["ids"] == [named["100% done"]]
    pending = client.get("/tasks", params={"queue": queue, "status": "pending", "limit": 500})
    assert len(pending.json()["tasks"]) == len(NAMES) - 2
