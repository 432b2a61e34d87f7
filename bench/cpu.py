"""Where a drain's CPU went: the machine's busy share and the workers' own CPU time.

A drain on a 2-core machine can be limited by the cores rather than by the queue: when
the machine is ~100% busy during one worker's drain, four workers cannot go faster, and
the figures say so. Linux only (``/proc/stat``); elsewhere the fields are absent.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_STAT = Path("/proc/stat")


def _jiffies() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs since boot; idle and iowait count as not busy."""
    try:
        fields = _STAT.read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
    idle = values[3] + values[4]
    total = sum(values)
    return total - idle, total


@dataclass
class CpuWindow:
    """Start it before spawning the workers; :meth:`result` after they were waited for."""

    jiffies: tuple[int, int] | None
    children: float

    @classmethod
    def start(cls) -> CpuWindow:
        return cls(_jiffies(), _children_cpu())

    def result(self, tasks: int) -> dict[str, Any]:
        """``cpu_busy``: share of all cores busy (any process, the database included);
        ``worker_cpu_s``: user+system seconds of the waited-for workers and their slots."""
        out: dict[str, Any] = {"cpus": os.cpu_count()}
        end = _jiffies()
        if self.jiffies is not None and end is not None and end[1] > self.jiffies[1]:
            out["cpu_busy"] = (end[0] - self.jiffies[0]) / (end[1] - self.jiffies[1])
        worker = _children_cpu() - self.children
        out["worker_cpu_s"] = worker
        out["worker_cpu_us_per_task"] = worker / tasks * 1e6 if tasks else 0.0
        return out


def _children_cpu() -> float:
    """CPU seconds of this process's waited-for children and, through them, their children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
