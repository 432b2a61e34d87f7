"""The shop's handlers: the seed's SetMassDeliveredHandler, and a CSV export."""

from __future__ import annotations

import csv
import io

from tasktable import RunningTask, TaskHandler

from . import db


class SetMassDelivered(TaskHandler):
    """``90 - Delivered | Update Status``: marks the complete orders among ``order_ids``
    delivered, with progress and a message (the seed's example handler)."""

    task_name = "90 - Delivered | Update Status"

    def run_task(self, task: RunningTask) -> None:
        args = task.args if isinstance(task.args, dict) else {}
        if "order_ids" not in args:
            raise ValueError("Argument order_ids is missing.")
        order_ids = [int(i) for i in args["order_ids"]]
        updated = 0
        for done, order_id in enumerate(order_ids, start=1):
            with db.engine().begin() as conn:  # one order at a time, like the seed's helper
                updated += db.set_delivered(conn, [order_id])
            task.set_progress(done, len(order_ids))
        task.add_message(
            f"Order statuses updated for complete orders: {updated} of {len(order_ids)} delivered.",
            "success",
        )


class ExportOrdersCsv(TaskHandler):
    """``Export orders to CSV``: attaches orders.csv; its action link downloads it."""

    task_name = "Export orders to CSV"
    filename = "orders.csv"

    def run_task(self, task: RunningTask) -> None:
        with db.engine().connect() as conn:
            rows = db.all_orders(conn)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["id", "customer", "total", "status"])
        for done, row in enumerate(rows, start=1):
            total = f"{row['total_cents'] / 100:.2f}"
            writer.writerow([row["id"], row["customer"], total, row["status"]])
            task.set_progress(done, len(rows))
        task.attach_file(out.getvalue().encode(), self.filename)
        # The seed's action link; relative paths resolve against the dashboard, which
        # serves the task's files at tasks/<id>/files/<name>.
        task.set_action_link(
            "Download CSV", f"tasks/{task.id}/files/{self.filename}", {"target": "_self"}
        )
        task.add_message(f"{len(rows)} orders exported.", "success")
