"""The task value and its JSON form: the seed's columns keep their names."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from tasktable.core.status import TaskStatus
from tasktable.core.task import ActionLink, Message, Progress, Task, TaskFile

SEED_COLUMNS = {
    "id",
    "name",
    "handler",
    "args",
    "status",
    "messages",
    "created_at",
    "executed_at",
    "finished_at",
    "action_link",
}
OUR_COLUMNS = {
    "queue",
    "priority",
    "run_at",
    "attempts",
    "max_attempts",
    "timeout",
    "progress",
    "error",
    "worker",
    "heartbeat_at",
    "unique_key",
    "cancel_requested",
    "files",
}
T0 = datetime(2022, 4, 5, 14, 11, 31, tzinfo=UTC)


def make_task(**changes: Any) -> Task:
    base = Task(
        id=1,
        name="50 - Shipping Email Sent",
        handler="myapp.sales:SetMassShippedHandler",
        args=["357028"],
        status=TaskStatus.PENDING,
        messages=(),
        created_at=T0,
        executed_at=None,
        finished_at=None,
        action_link=None,
        queue="default",
        priority=0,
        run_at=T0,
        attempts=0,
        max_attempts=1,
        timeout=None,
        progress=None,
        error=None,
        worker=None,
        heartbeat_at=None,
        unique_key=None,
        claim_token="secret-token",
    )
    return base.replace(**changes)


def test_json_has_the_seeds_columns_plus_ours_and_nothing_else() -> None:
    data = make_task().to_json()
    assert set(data) == SEED_COLUMNS | OUR_COLUMNS


def test_the_seeds_pending_example() -> None:
    data = make_task().to_json()
    assert data["id"] == 1
    assert data["args"] == ["357028"]
    assert data["status"] == "pending"
    assert data["messages"] == []
    assert data["created_at"] == "2022-04-05T14:11:31+00:00"
    assert data["executed_at"] is None and data["finished_at"] is None
    assert data["action_link"] == {"text": None, "route_path": None, "route_params": None}


def test_claim_token_is_never_shown() -> None:
    text = json.dumps(make_task().to_json())
    assert "secret-token" not in text
    assert "claim_token" not in text


def test_json_is_serializable_with_everything_set() -> None:
    task = make_task(
        status=TaskStatus.SUCCESS,
        messages=(Message(text="Order statuses updated", level="success", time=T0),),
        executed_at=T0,
        finished_at=T0,
        action_link=ActionLink(text="Download CSV", route_path="reports/dl", route_params={"f": 1}),
        progress=Progress(done=3, total=4),
        worker="host:1:abc",
        heartbeat_at=T0,
        files=(
            TaskFile(task_id=1, filename="r.csv", content_type="text/csv", size=9, created_at=T0),
        ),
    )
    data = json.loads(json.dumps(task.to_json()))
    assert data["messages"] == [
        {"text": "Order statuses updated", "level": "success", "time": "2022-04-05T14:11:31+00:00"}
    ]
    assert data["action_link"] == {
        "text": "Download CSV",
        "route_path": "reports/dl",
        "route_params": {"f": 1},
    }
    assert data["progress"] == {"done": 3, "total": 4}
    assert data["files"] == [{"filename": "r.csv", "content_type": "text/csv", "size": 9}]


def test_task_is_frozen() -> None:
    task = make_task()
    with pytest.raises(AttributeError):
        task.name = "other"  # type: ignore[misc]
    assert task.replace(name="other").name == "other"
    assert task.name == "50 - Shipping Email Sent"


def test_message_json_round_trip_and_the_seeds_plain_strings() -> None:
    message = Message(text="done", level="warning", time=T0)
    assert Message.from_json(message.to_json()) == message
    legacy = Message.from_json("Order statuses updated for complete orders.")
    assert legacy.text == "Order statuses updated for complete orders."
    assert legacy.level == "info"


def test_action_link_from_json() -> None:
    assert ActionLink.from_json(None) is None
    assert ActionLink.from_json("x") is None
    link = ActionLink.from_json({"text": "t", "route_path": "p", "route_params": [1]})
    assert link == ActionLink(text="t", route_path="p", route_params=None)
    assert ActionLink().is_empty and not ActionLink(text="t").is_empty


@pytest.mark.parametrize(
    ("done", "total", "fraction"),
    [(0, 10, 0.0), (5, 10, 0.5), (12, 10, 1.0), (-1, 10, 0.0), (3, None, None), (3, 0, None)],
)
def test_progress_fraction(done: int, total: int | None, fraction: float | None) -> None:
    assert Progress(done=done, total=total).fraction == fraction
