"""The example shop's views in-process (the browser walk is test_shop.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("flask", reason="Flask is not installed (pip install -e '.[dev]')")

from examples.shop import db
from examples.shop.app import create_app
from flask import Flask

from tasktable import TaskStatus
from tasktable.contrib.flask import get_table


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    url = f"sqlite:///{tmp_path}/shop.sqlite3"
    monkeypatch.setenv("SHOP_DATABASE_URL", url)  # what the handlers read, inline too
    flask_app = create_app(url, threshold=3)
    yield flask_app
    get_table(flask_app).close()
    db.engine(url).dispose()


def order_statuses(app: Flask) -> dict[int, str]:
    with db.engine(app.config["TASKTABLE_DATABASE_URL"]).connect() as conn:
        return {row["id"]: row["status"] for row in db.all_orders(conn)}


def test_few_orders_run_inline_many_in_the_background(app: Flask) -> None:
    client = app.test_client()
    client.post("/orders/set-delivered", data={"order_id": ["1", "2", "5"]})
    assert [order_statuses(app)[i] for i in (1, 2, 5)] == ["delivered", "delivered", "processing"]
    page = client.get("/").get_data(as_text=True)
    assert "Order statuses updated for complete orders: 2 of 3 delivered." in page
    assert get_table(app).count() == 0

    client.post("/orders/set-delivered", data={"order_id": ["6", "7", "8", "9"]})
    [task] = get_table(app).list().tasks
    assert (task.name, task.status, task.args) == (
        "90 - Delivered | Update Status",
        TaskStatus.PENDING,
        {"order_ids": [6, 7, 8, 9]},
    )
    assert "will run in the background (task #" in client.get("/").get_data(as_text=True)


def test_nothing_selected_and_the_export(app: Flask) -> None:
    client = app.test_client()
    client.post("/orders/set-delivered", data={})
    assert "Select at least one order." in client.get("/").get_data(as_text=True)
    client.post("/orders/export")
    [task] = get_table(app).list().tasks
    assert task.name == "Export orders to CSV"
    result = get_table(app).run_inline("examples.shop.handlers:ExportOrdersCsv", {})
    assert result.ok
    assert result.files["orders.csv"].decode().count("\n") == 31
    assert result.action_link is not None
    assert result.action_link.text == "Download CSV"
