"""Cases Schemathesis found, replayed exactly (see the commit that fixed each)."""

from __future__ import annotations

import httpx

from .conftest import Server


def test_run_at_with_delay_is_refused_and_the_document_says_so(server: Server) -> None:
    # Found as a schema-valid body refused with 422 (the document's "not" went unheeded).
    body = {
        "handler": "myapp.tasks:SetMassDelivered",
        "args": [],
        "name": "0",
        "queue": "0",
        "priority": 0,
        "run_at": "2000-01-01T00:00:00Z",
        "delay": 0.0,
        "max_attempts": 1,
        "timeout": 5e-324,
    }
    client = server.client("operator")
    response = client.post("/tasks", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["message"] == "Give either run_at or delay, not both."
    document = client.get("/openapi.json").json()
    variants = document["components"]["schemas"]["NewTask"]["anyOf"]
    assert all(not {"run_at", "delay"} <= set(v["properties"]) for v in variants)
    for timing in ({"run_at": "2000-01-01T00:00:00Z"}, {"delay": 0.0}):
        ok = client.post("/tasks", json={"handler": "tests.support.handlers:Echo", **timing})
        assert ok.status_code == 201, ok.text


def test_undeclared_methods_get_a_json_405_not_the_dashboard(server: Server) -> None:
    # Found as `curl -X QUERY .../api/v1/health` answered by the dashboard's HTML 404.
    headers = {"Authorization": f"Bearer {server.tokens['admin']}"}
    for method, path, allowed in [
        ("QUERY", "/health", "GET"),
        ("QUERY", "/stats", "GET"),
        ("PUT", "/tasks", "POST"),
        ("QUERY", "/tasks/bulk/retry", "POST"),
        ("TRACE", "/tasks/1", "PATCH"),
    ]:
        response = httpx.request(method, server.api + path, headers=headers)
        assert response.status_code == 405, (method, path)
        assert response.headers["content-type"] == "application/json"
        assert response.json()["error"]["code"] == "method_not_allowed"
        assert allowed in response.headers["allow"]
    missing = httpx.request("QUERY", server.api + "/nothing", headers=headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_a_foreign_cursor_is_invalid_cursor(server: Server) -> None:
    # Found as GET /tasks?...&cursor=0: a cursor this server never issued.
    response = server.client("admin").get(
        "/tasks",
        params={
            "name": "",
            "handler": "myapp.tasks:SetMassDelivered",
            "queue": "0",
            "created_after": "2000-01-01T00:00:00Z",
            "search": "",
            "limit": 50,
            "cursor": "0",
        },
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_cursor"


def test_a_name_of_one_separator_character_is_invalid_for_both(server: Server) -> None:
    # Found as {"name": "\u001e", ...} refused while the document (ECMA regexes) called it
    # valid: the name pattern now spells out the characters str.strip() removes.
    client = server.client("operator")
    for name in ("\u001e", "\u3000", " \t"):
        response = client.post(
            "/tasks", json={"handler": "tests.support.handlers:Echo", "name": name}
        )
        assert response.status_code == 422, repr(name)
    ok = client.post("/tasks", json={"handler": "tests.support.handlers:Echo", "name": "\u001ex"})
    assert ok.status_code == 201


def test_a_trailing_newline_is_invalid_as_the_document_reads_it(server: Server) -> None:
    client = server.client("operator")
    response = client.post(
        "/tasks", json={"handler": "tests.support.handlers:Echo", "queue": "q\n"}
    )
    assert response.status_code == 422
