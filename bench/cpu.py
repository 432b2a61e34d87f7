"""Where a drain's CPU went: the machine's busy share and the workers' own CPU time.

A drain on a 2-core machine can be limited by the cores rather than by the queue: when
the machine is ~100% busy during one worker's drain, four workers cannot go faster, and
the figures say so. Linux only (``/proc``); elsewhere the fields are absent.

The workers' CPU is sampled from ``/proc`` over each worker's whole process tree, every
``SAMPLE_EVERY`` seconds while it runs: a slot process forked by the fork server is not
the worker's child, and its time never reaches the worker's ``RUSAGE_CHILDREN``.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SAMPLE_EVERY = 0.1  # seconds
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PROC = Path("/proc")


def _jiffies() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs since boot; idle and iowait count as not busy."""
    try:
        fields = (_PROC / "stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
    total = sum(values)
    return total - (values[3] + values[4]), total


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process under it (from each thread's ``children`` list)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            tasks = list((_PROC / str(current) / "task").iterdir())
        except OSError:
            continue
        for task in tasks:
            with contextlib.suppress(OSError, ValueError):  # gone meanwhile
                todo += [int(c) for c in (task / "children").read_text().split()]
    return found


def _cpu_ticks(pid: int) -> int | None:
    """utime + stime of ``pid`` in clock ticks, or None when it is gone."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)


class CpuWindow:
    """Start it before spawning the workers, :meth:`track` their pids, :meth:`result`
    after they were waited for."""

    def __init__(self) -> None:
        self.jiffies = _jiffies()
        self.roots: list[int] = []
        self.ticks: dict[int, int] = {}  # the last reading of every process seen
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def start(cls) -> CpuWindow:
        return cls()

    def track(self, pids: Iterable[int]) -> None:
        """Sample these processes' trees until :meth:`result`."""
        self.roots += list(pids)
        if self._thread is None:
            self._thread = threading.Thread(target=self._sample, name="bench-cpu", daemon=True)
            self._thread.start()

    def _sample(self) -> None:
        while True:
            self._read()
            if self._stop.wait(SAMPLE_EVERY):
                return

    def _read(self) -> None:
        for root in self.roots:
            for pid in _descendants(root):
                ticks = _cpu_ticks(pid)
                if ticks is not None:
                    self.ticks[pid] = max(ticks, self.ticks.get(pid, 0))

    def result(self, tasks: int) -> dict[str, Any]:
        """``cpu_busy``: share of all cores busy (any process, the database included);
        ``worker_cpu_s``: user+system seconds of the tracked workers' process trees (up to
        their last sample: a process's final ``SAMPLE_EVERY`` may be missed)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        out: dict[str, Any] = {"cpus": os.cpu_count()}
        end = _jiffies()
        if self.jiffies is not None and end is not None and end[1] > self.jiffies[1]:
            out["cpu_busy"] = (end[0] - self.jiffies[0]) / (end[1] - self.jiffies[1])
        if self.roots:
            worker = sum(self.ticks.values()) / _TICKS
            out["worker_cpu_s"] = worker
            out["worker_cpu_us_per_task"] = worker / tasks * 1e6 if tasks else 0.0
        return out
