"""Each route does what PRODUCT.md says, through HTTP against a real server, on each database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, update

from tasktable import TaskTable
from tasktable.storage.schema import task_table
from tasktable.storage.types import utcnow

from .conftest import ECHO, Server, attach


def test_health_needs_no_token_and_says_the_database_answers(server: Server) -> None:
    response = server.client(role=None).get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["database"] == "up"


def test_enqueue_show_patch_and_delete(server: Server, queue: str) -> None:
    client = server.client("operator")
    created = client.post(
        "/tasks",
        json={
            "handler": ECHO,
            "args": {"order_ids": [1, 2]},
            "name": "90 - Delivered | Update Status",
            "queue": queue,
            "priority": 5,
            "delay": 3600,
            "max_attempts": 3,
            "unique_key": f"order-1-{queue}",
        },
    )
    assert created.status_code == 201, created.text
    task = created.json()
    assert task["status"] == "pending"
    assert task["args"] == {"order_ids": [1, 2]}
    assert task["queue"] == queue and task["priority"] == 5 and task["max_attempts"] == 3
    assert created.headers["location"].endswith(f"/api/v1/tasks/{task['id']}")

    again = client.post("/tasks", json={"handler": ECHO, "unique_key": f"order-1-{queue}"})
    assert again.status_code == 201 and again.json()["id"] == task["id"]

    shown = client.get(f"/tasks/{task['id']}")
    assert shown.status_code == 200 and shown.json() == task

    patched = client.patch(
        f"/tasks/{task['id']}",
        json={"name": "renamed", "priority": -3, "queue": "slow", "run_at": "2030-01-02T03:04:05Z"},
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["name"], body["priority"], body["queue"]) == ("renamed", -3, "slow")
    assert body["run_at"].startswith("2030-01-02T03:04:05")

    assert client.delete(f"/tasks/{task['id']}").status_code == 204
    missing = client.get(f"/tasks/{task['id']}")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert client.delete(f"/tasks/{task['id']}").status_code == 404


def test_handler_defaults_name(server: Server) -> None:
    created = server.client("operator").post("/tasks", json={"handler": ECHO})
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "Echo"


def test_patch_only_while_pending(server: Server, sample: dict[str, int]) -> None:
    client = server.client("operator")
    refused = client.patch(f"/tasks/{sample['cancelled']}", json={"name": "x"})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "invalid_transition"


def test_retry_and_cancel_one(server: Server, sample: dict[str, int]) -> None:
    client = server.client("operator")
    retried = client.post(f"/tasks/{sample['cancelled']}/retry")
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "pending"
    again = client.post(f"/tasks/{sample['pending']}/retry")
    assert again.status_code == 409
    assert "only error or cancelled" in again.json()["error"]["message"]

    cancelled = client.post(f"/tasks/{sample['pending']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    twice = client.post(f"/tasks/{sample['pending']}/cancel")
    assert twice.status_code == 409
    assert client.post("/tasks/999999/cancel").status_code == 404
    assert client.post("/tasks/999999/retry").status_code == 404


def test_running_task_is_asked_to_stop(server: Server, sample: dict[str, int]) -> None:
    engine = create_engine(_sa(server.db_url))
    with engine.begin() as conn:
        conn.execute(
            update(task_table)
            .where(task_table.c.id == sample["pending"])
            .values(status="running", worker="w1", claim_token="t", heartbeat_at=utcnow())
        )
    engine.dispose()
    response = server.client("operator").post(f"/tasks/{sample['pending']}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "running"
    assert response.json()["cancel_requested"] is True


def test_list_filters_sort_and_keyset_paging(server: Server, queue: str) -> None:
    qa, qb = f"{queue}-a", f"{queue}-b"
    mine = {"queue": [qa, qb]}
    with TaskTable(server.db_url) as table:
        ids = [
            table.enqueue(
                ECHO, {"i": i, "q": queue}, name=f"task {i}", queue=qa if i % 2 else qb
            ).id
            for i in range(7)
        ]
        table.cancel(ids[0])
    client = server.client("viewer")
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, "sort": "id", **mine}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/tasks", params=params)
        assert page.status_code == 200, page.text
        seen += [t["id"] for t in page.json()["tasks"]]
        cursor = page.json()["next_cursor"]
        if not cursor:
            break
    assert seen == ids

    by_queue = client.get("/tasks", params={"queue": qa, "status": ["pending", "running"]})
    assert [t["id"] for t in by_queue.json()["tasks"]] == [ids[5], ids[3], ids[1]]
    by_status = client.get("/tasks", params=[("status", "cancelled"), ("queue", qa), ("queue", qb)])
    assert [t["id"] for t in by_status.json()["tasks"]] == [ids[0]]
    by_name = client.get("/tasks", params={"name": "TASK 6", **mine})
    assert [t["id"] for t in by_name.json()["tasks"]] == [ids[6]]
    searched = client.get("/tasks", params={"search": f'"i":4,"q":"{queue}"'})
    assert [t["id"] for t in searched.json()["tasks"]] == [ids[4]]
    by_handler = client.get("/tasks", params={"handler": "tests.support.handlers.Echo", **mine})
    assert len(by_handler.json()["tasks"]) == 7
    future = client.get("/tasks", params={"created_after": "2999-01-01T00:00:00Z", **mine})
    assert future.json()["tasks"] == []
    unfinished = client.get("/tasks", params={"finished_before": "2999-01-01T00:00:00Z", **mine})
    assert [t["id"] for t in unfinished.json()["tasks"]] == [ids[0]]
    by_name_sorted = client.get("/tasks", params={"sort": "-name", "limit": 2, **mine})
    assert [t["name"] for t in by_name_sorted.json()["tasks"]] == ["task 6", "task 5"]


def test_cursor_from_another_sort_is_refused(server: Server) -> None:
    with TaskTable(server.db_url) as table:
        for i in range(3):
            table.enqueue(ECHO, {"i": i})
    client = server.client("viewer")
    cursor = client.get("/tasks", params={"limit": 1}).json()["next_cursor"]
    refused = client.get("/tasks", params={"limit": 1, "cursor": cursor, "sort": "name"})
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "invalid_cursor"


def test_bulk_by_ids_and_by_filter(server: Server, queue: str) -> None:
    keep = f"{queue}-keep"
    with TaskTable(server.db_url) as table:
        ids = [table.enqueue(ECHO, {"i": i}, queue=queue).id for i in range(5)]
        other = table.enqueue(ECHO, {}, queue=keep).id
    client = server.client("operator")
    cancelled = client.post("/tasks/bulk/cancel", json={"ids": ids[:2]})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["ids"] == ids[:2] and cancelled.json()["count"] == 2

    by_filter = client.post(
        "/tasks/bulk/cancel",
        json={"filter": {"queue": [queue], "status": ["pending"]}, "limit": 2},
    )
    assert by_filter.json()["ids"] == ids[2:4]
    assert by_filter.json()["limit_reached"] is True

    retried = client.post(
        "/tasks/bulk/retry", json={"filter": {"status": ["cancelled"], "queue": [queue, keep]}}
    )
    assert retried.json()["ids"] == ids[:4]
    assert retried.json()["limit_reached"] is False

    deleted = client.post("/tasks/bulk/delete", json={"filter": {"queue": [queue]}})
    assert deleted.json()["ids"] == ids
    remaining = client.get("/tasks", params={"queue": [queue, keep]}).json()["tasks"]
    assert [t["id"] for t in remaining] == [other]

    both = client.post("/tasks/bulk/delete", json={"ids": [other], "filter": {}})
    assert both.status_code == 422
    too_many = client.post("/tasks/bulk/delete", json={"ids": list(range(1, 1002))})
    assert too_many.status_code == 422
    assert client.get(f"/tasks/{other}").status_code == 200


def test_files_list_and_download(server: Server) -> None:
    with TaskTable(server.db_url) as table:
        task = table.enqueue("tests.support.handlers:Progressive", {"total": 2})
    attach(server.db_url, task.id, "report.csv", b"id,status\n1,ok\n")
    attach(server.db_url, task.id, 'r\u00e9sum\u00e9 "1".txt', b"x")
    client = server.client("viewer")
    listed = client.get(f"/tasks/{task.id}/files")
    assert [f["filename"] for f in listed.json()["files"]] == [
        "report.csv",
        'r\u00e9sum\u00e9 "1".txt',
    ]
    download = client.get(f"/tasks/{task.id}/files/report.csv")
    assert download.status_code == 200
    assert download.content == b"id,status\n1,ok\n"
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.headers["content-disposition"].startswith('attachment; filename="report.csv"')
    assert download.headers["x-content-type-options"] == "nosniff"
    odd = client.get(f"/tasks/{task.id}/files/r%C3%A9sum%C3%A9%20%221%22.txt")
    assert odd.status_code == 200 and odd.content == b"x"
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9%20%221%22.txt" in odd.headers["content-disposition"]
    assert client.get(f"/tasks/{task.id}/files/nope.csv").status_code == 404
    assert client.get("/tasks/999999/files/report.csv").status_code == 404


def test_stats_counts_throughput_and_workers(
    server: Server, sample: dict[str, int], queue: str
) -> None:
    engine = create_engine(_sa(server.db_url))
    with engine.begin() as conn:
        conn.execute(
            update(task_table)
            .where(task_table.c.id == sample["other"])
            .values(status="success", finished_at=utcnow(-90))
        )
    engine.dispose()
    response = server.client("viewer").get("/stats", params={"bucket_seconds": 60, "buckets": 5})
    assert response.status_code == 200, response.text
    stats = response.json()
    mine = stats["by_queue"][queue]
    assert (mine["pending"], mine["cancelled"], mine["success"]) == (1, 1, 1)
    assert stats["by_status"]["success"] >= 1
    assert stats["total"] >= 3
    assert stats["oldest_pending_age_seconds"] is not None
    assert len(stats["throughput"]) == 5
    assert sum(b["success"] for b in stats["throughput"]) >= 1
    assert stats["throughput"][-1]["success"] == 0  # 90 s ago is not in the current minute
    assert stats["workers"] == [] and stats["workers_alive"] == 0


def test_unknown_route_and_method_are_json(server: Server) -> None:
    client = server.client("admin")
    missing = client.get("/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong = client.put("/tasks")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"
    assert "POST" in wrong.headers["allow"]


def test_openapi_document_lists_every_route(server: Server) -> None:
    document = server.client("viewer").get("/openapi.json").json()
    assert document["openapi"].startswith("3.")
    operations = {
        f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item
    }
    assert operations == {
        "GET /api/v1/health",
        "GET /api/v1/openapi.json",
        "GET /api/v1/tasks",
        "POST /api/v1/tasks",
        "GET /api/v1/tasks/{task_id}",
        "PATCH /api/v1/tasks/{task_id}",
        "DELETE /api/v1/tasks/{task_id}",
        "POST /api/v1/tasks/{task_id}/retry",
        "POST /api/v1/tasks/{task_id}/cancel",
        "GET /api/v1/tasks/{task_id}/files",
        "GET /api/v1/tasks/{task_id}/files/{filename}",
        "POST /api/v1/tasks/bulk/retry",
        "POST /api/v1/tasks/bulk/cancel",
        "POST /api/v1/tasks/bulk/delete",
        "GET /api/v1/stats",
    }
    for item in document["paths"].values():
        for op in item.values():
            assert "422" in op["responses"] or op["operationId"] in ("getHealth", "getOpenAPI")


def _sa(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)
