"""Example handlers modelled on the seed's "90 - Delivered | Update Status" mass action.

They keep a tiny order book in a JSON file beside the demo database, so the
demo shows real state changing without needing a shop.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..context import RunningTask
from ..handler import TaskHandler

ORDER_STATUS_COMPLETE_DELIVERED = "complete_delivered"


def orders_file() -> Path:
    """The demo's order book: ``TASKTABLE_DEMO_ORDERS``, else ``var/demo-orders.json``."""
    return Path(os.environ.get("TASKTABLE_DEMO_ORDERS", "var/demo-orders.json"))


def load_orders() -> dict[str, Any]:
    path = orders_file()
    if not path.exists():
        return {}
    data: dict[str, Any] = json.loads(path.read_text())
    return data


_thread_lock = threading.Lock()


@contextlib.contextmanager
def locked_orders() -> Iterator[dict[str, Any]]:
    """The order book, locked against other slots and processes while changed."""
    path = orders_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with _thread_lock, open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        orders = load_orders()
        yield orders
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(orders, indent=1))
        tmp.replace(path)


class SetMassDeliveredHandler(TaskHandler):
    """The seed's example: set the "Delivered" status on many orders."""

    task_name = "90 - Delivered | Update Status"

    def run_task(self, task: RunningTask) -> None:
        args = task.args
        if not isinstance(args, dict) or "order_ids" not in args:
            raise ValueError("Argument order_ids is missing.")
        order_ids = list(args["order_ids"])
        delay = float(args.get("seconds_per_order", 0.05))
        for done, order_id in enumerate(order_ids, start=1):
            time.sleep(delay)
            with locked_orders() as orders:
                orders[str(int(order_id))] = {
                    "status": ORDER_STATUS_COMPLETE_DELIVERED,
                    "comment": "Order Delivered",
                }
            task.set_progress(done, len(order_ids))
        task.add_message("Order statuses updated for complete orders.", level="success")


class ExportOrdersCsvHandler(TaskHandler):
    """Writes the orders to a CSV file and offers it for download (the seed's action link)."""

    task_name = "Export orders to CSV"

    def run_task(self, task: RunningTask) -> None:
        args = task.args if isinstance(task.args, dict) else {}
        delay = float(args.get("seconds_per_row", 0.0))
        orders = load_orders()
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["order_id", "status", "comment"])
        rows = sorted(orders.items(), key=lambda kv: int(kv[0]))
        for done, (order_id, order) in enumerate(rows, start=1):
            time.sleep(delay)
            writer.writerow([order_id, order["status"], order["comment"]])
            task.set_progress(done, len(rows))
        filename = f"orders-{task.id}.csv"
        task.attach_file(buffer.getvalue().encode(), filename)
        task.set_action_link(
            "Download CSV",
            f"tasks/{task.id}/files/{filename}",
            {"file_name": filename, "task_id": task.id, "target": "_self"},
        )
        task.add_message(f"Exported {len(orders)} orders to {filename}.", level="success")


class FailingImportHandler(TaskHandler):
    """Shows what a failure looks like: the message, the traceback and the log file."""

    task_name = "Import supplier feed"

    def run_task(self, task: RunningTask) -> None:
        args = task.args if isinstance(task.args, dict) else {}
        task.add_message("Downloading the supplier feed...")
        chunks = 5
        for done in range(1, 3):
            time.sleep(float(args.get("seconds_per_chunk", 0.0)))
            task.set_progress(done, chunks)
        raise ConnectionError("Supplier feed at https://supplier.invalid/feed.xml is unreachable")
