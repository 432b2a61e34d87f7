"""Worker processes for the benchmark: spawn, wait, stop, and measure their memory."""

from __future__ import annotations

import functools
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TASKTABLE = Path(sys.executable).with_name("tasktable")
_LOG_DIR = Path(tempfile.gettempdir()) / "tt_bench_logs"


def worker_env() -> dict[str, str]:
    """The environment of a worker subprocess: bench handlers importable, no stray config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTABLE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["TASKTABLE_LOG_FILE"] = str(_LOG_DIR / "background_task.log")
    return env


@functools.cache
def worker_help() -> str:
    done = subprocess.run(
        [str(TASKTABLE), "worker", "--help"],
        capture_output=True,
        text=True,
        env=worker_env(),
        check=False,
    )
    return done.stdout


@functools.cache
def worker_modes() -> tuple[str | None, ...]:
    """The slot modes ``tasktable worker --mode`` offers, or (None,) before it existed."""
    text = worker_help()
    if "--mode" not in text:
        return (None,)
    found = re.search(r"--mode\s*\[([a-z|]+)\]", text)
    modes = found.group(1).split("|") if found else ["thread", "process"]
    return tuple(m for m in ("process", "thread") if m in modes) or tuple(modes)


def spawn_worker(
    url: str, *, slots: int, mode: str | None, burst: bool, extra: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    argv = [str(TASKTABLE), "--db", url, "worker", "--slots", str(slots)]
    if mode is not None:
        argv += ["--mode", mode]
    if burst:
        argv.append("--burst")
    argv += list(extra)
    return subprocess.Popen(
        argv, env=worker_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT
    )


def wait_all(procs: Sequence[subprocess.Popen[bytes]], timeout: float) -> None:
    """Wait for every process; raise with its stderr when one fails or runs past ``timeout``."""
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for other in procs:
                other.kill()
            raise RuntimeError(f"worker still running after {timeout:.0f}s") from None
    for proc in procs:
        if proc.returncode != 0:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"worker exited {proc.returncode}: {err.strip()[-500:]}")


def stop(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def children(pid: int) -> list[int]:
    """All descendants of ``pid`` (from /proc/<pid>/task/*/children)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def memory(pid: int) -> dict[str, float]:
    """RSS of a worker (now and its peak) and of its child processes, and the tree's PSS, in MB."""
    kids = children(pid)
    child_rss = [_status_kb(k, "VmRSS") / 1024 for k in kids]
    return {
        "parent_rss_mb": _status_kb(pid, "VmRSS") / 1024,
        "parent_peak_rss_mb": _status_kb(pid, "VmHWM") / 1024,  # high-water mark since start
        "children": len(kids),
        "child_rss_mb": max(child_rss) if child_rss else 0.0,
        "total_rss_mb": _status_kb(pid, "VmRSS") / 1024 + sum(child_rss),
        "total_pss_mb": (_pss_kb(pid) + sum(_pss_kb(k) for k in kids)) / 1024,
    }
