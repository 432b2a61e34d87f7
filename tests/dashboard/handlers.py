"""Handlers of the dashboard tests (imported by worker subprocesses as tests.dashboard.handlers)."""

from __future__ import annotations

import time

from tasktable import RunningTask, TaskHandler

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"


class SlowProgress(TaskHandler):
    """Reports progress ``args["steps"]`` times, ``args["seconds"]`` apart."""

    task_name = "Rebuild search index"

    def run_task(self, task: RunningTask) -> None:
        steps = int(task.args.get("steps", 20))
        seconds = float(task.args.get("seconds", 0.5))
        for done in range(1, steps + 1):
            time.sleep(seconds)
            task.set_progress(done, steps)
        task.add_message(f"Indexed {steps} batches.", level="success")


class Report(TaskHandler):
    """Attaches a CSV and points the seed's action link at its download."""

    task_name = "Export orders to CSV"

    def run_task(self, task: RunningTask) -> None:
        rows = int(task.args.get("rows", 3))
        body = "order_id,status\n" + "".join(f"{100 + i},delivered\n" for i in range(rows))
        filename = f"report-{task.id}.csv"
        task.attach_file(body.encode(), filename)
        task.set_progress(rows, rows)
        task.set_action_link(
            "Download CSV", f"tasks/{task.id}/files/{filename}", {"target": "_self"}
        )
        task.add_message(f"Exported {rows} orders to {filename}.", level="success")


class Flaky(TaskHandler):
    """Fails with a message and a traceback."""

    task_name = "Import supplier feed"

    def run_task(self, task: RunningTask) -> None:
        task.add_message("Downloading the supplier feed...")
        raise ConnectionError("Supplier feed at https://supplier.invalid/feed.xml is unreachable")


class Hostile(TaskHandler):
    """Puts script payloads everywhere a task has text: messages, action link, traceback."""

    task_name = SCRIPT

    def run_task(self, task: RunningTask) -> None:
        task.add_message(SCRIPT, level="warning")
        task.add_message(IMG, level="error")
        task.add_message('"><svg onload=alert(1)>', level="info")
        task.set_action_link(IMG, "javascript:alert(1)", {"x": SCRIPT})
        raise RuntimeError(f"{SCRIPT} {IMG}")


class HostileLink(TaskHandler):
    """An action link whose text is a payload and whose path hides a javascript: URL."""

    task_name = IMG

    def run_task(self, task: RunningTask) -> None:
        task.add_message(f"done {IMG}", level="success")
        task.set_action_link(SCRIPT, " JaVaScRiPt:alert(1)", {"q": IMG})
