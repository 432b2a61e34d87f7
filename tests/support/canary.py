"""A module whose import leaves a marker file: proves a path was (or was not) imported."""

import os
from pathlib import Path

_marker = os.environ.get("TASKTABLE_CANARY_MARKER")
if _marker:
    Path(_marker).write_text("imported")

from tasktable import RunningTask, TaskHandler  # noqa: E402


class Canary(TaskHandler):
    def run_task(self, task: RunningTask) -> None:
        pass
