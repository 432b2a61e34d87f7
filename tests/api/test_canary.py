"""A handler path that arrives over the network never decides what gets imported.

tests.support.canary writes a marker file when imported: the marker must never
appear when enqueue is refused (TASKTABLE_HANDLERS unset, or not matching), and
does appear when the allowlist admits it (so this test can fail).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .conftest import ECHO, Server

CANARY = "tests.support.canary:Canary"
CANARY_FORMS = [CANARY, "tests.support.canary.Canary", " tests.support.canary:Canary "]


def _enqueue(server: Server, handler: str) -> tuple[int, dict[str, str]]:
    response = server.client("operator").post("/tasks", json={"handler": handler.strip()})
    return response.status_code, response.json().get("error", {})


def test_enqueue_is_refused_until_handlers_are_set(
    start_server: Callable[..., Server], marker: Path
) -> None:
    server = start_server(handlers=None)
    before = server.checksum()
    for handler in [*CANARY_FORMS, ECHO]:
        status, error = _enqueue(server, handler)
        assert status == 403
        assert error["code"] == "handler_not_allowed"
        assert "TASKTABLE_HANDLERS" in error["message"]
    assert server.checksum() == before
    assert not marker.exists()


def test_a_handler_outside_the_allowlist_is_never_imported(
    start_server: Callable[..., Server], marker: Path
) -> None:
    server = start_server(handlers="tests.support.handlers:*")
    before = server.checksum()
    for handler in [*CANARY_FORMS, "tests.support.handlers_x:Canary", "tests.support:canary"]:
        status, error = _enqueue(server, handler)
        assert status == 403, handler
        assert error["code"] == "handler_not_allowed"
        assert "not allowed by TASKTABLE_HANDLERS" in error["message"]
    assert server.checksum() == before
    assert not marker.exists()
    status, _ = _enqueue(server, ECHO)  # an allowed one still works
    assert status == 201


def test_the_canary_marks_an_import_when_allowed(
    start_server: Callable[..., Server], marker: Path
) -> None:
    server = start_server(handlers="tests.support.canary:*")
    status, _ = _enqueue(server, CANARY)
    assert status == 201
    assert marker.read_text() == "imported"
