"""The benchmark harness runs end to end at a tiny size and writes well-formed results.

No timing is asserted: only that each figure exists, is positive, and that the
JSON and markdown files have the shape the docs describe.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench.cli import main
from bench.config import TINY
from bench.peers.host import PEER_BACKENDS
from bench.report import markdown
from bench.runner import WORKLOADS, Outcome, peer_cases, tasktable_cases
from bench.stats import percentile


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([3.0], 99) == 3.0


def test_every_workload_has_a_case_on_postgresql() -> None:
    cases = tasktable_cases(WORKLOADS, ["postgresql"], TINY)
    assert {c.workload for c in cases} == set(WORKLOADS)
    assert all(c.system == "tasktable" for c in cases)


def test_every_peer_has_an_adapter_and_its_own_workloads() -> None:
    """The peers' venv resolves each name with bench.peers.run.PEERS; the host
    side must name the same peers, and pgqueuer's uncapped setting runs drain only."""
    source = (Path(__file__).parents[2] / "bench" / "peers" / "run.py").read_text()
    for peer in PEER_BACKENDS:
        assert f'"{peer}": "bench.peers.' in source
    cases = peer_cases(["enqueue", "drain", "latency"], ["postgresql", "sqlite"])
    unlimited = {(c.workload, c.backend) for c in cases if c.system == "pgqueuer-unlimited"}
    assert unlimited == {("drain", "postgresql")}
    capped = {(c.workload, c.backend) for c in cases if c.system == "pgqueuer"}
    assert capped == {("enqueue", "postgresql"), ("drain", "postgresql"), ("latency", "postgresql")}


def test_markdown_names_failures_and_peers() -> None:
    ok = Outcome(
        "tasktable",
        "enqueue",
        "single",
        "sqlite",
        "tasks/s",
        value=10.0,
        values=[10.0],
        runs=[{"value": 10.0}],
    )
    peer = Outcome(
        "huey",
        "enqueue",
        "peer",
        "sqlite",
        "tasks/s",
        value=5.0,
        values=[5.0],
        runs=[{"value": 5.0}],
    )
    bad = Outcome("tasktable", "drain", "1x5 thread", "sqlite", "tasks/s", errors=["boom"])
    meta = {
        "date": "d",
        "commit": "c",
        "size": "tiny",
        "runs": 1,
        "cpus": 2,
        "load_start": "0",
        "worker_modes": ["thread"],
        "peer_drain_variant": "1x5 thread",
    }
    text = markdown(meta, [ok, peer, bad])
    assert "| enqueue | single | tasks/s | 10 |" in text
    assert "| enqueue | sqlite | 10 | 5 | 2.00 |" in text
    assert "boom" in text
    assert set(PEER_BACKENDS) == {
        "procrastinate",
        "pgqueuer",
        "pgqueuer-unlimited",
        "huey",
        "django-tasks",
    }


def test_tiny_enqueue_run_writes_json_and_markdown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "--size",
            "tiny",
            "--db",
            "sqlite",
            "--workloads",
            "enqueue,enqueue_many",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    [path] = tmp_path.glob("*.json")
    data = json.loads(path.read_text())
    assert data["meta"]["size"] == "tiny" and data["meta"]["runs"] == 1
    results = {(r["workload"], r["backend"]): r for r in data["results"]}
    assert set(results) == {("enqueue", "sqlite"), ("enqueue_many", "sqlite")}
    for result in results.values():
        assert result["system"] == "tasktable" and not result["errors"]
        assert result["value"] > 0 and len(result["values"]) == 1
        assert result["runs"][0]["tasks"] > 0
    assert path.with_suffix(".md").read_text() in capsys.readouterr().out


def test_cpu_window_counts_the_tracked_process_trees() -> None:
    import subprocess
    import sys

    from bench.cpu import CpuWindow

    window = CpuWindow.start()
    # A parent that burns 0.2 s of CPU and a grandchild that burns 0.3 s: both count.
    burn = "import time\nwhile time.process_time() < {}: pass\n"
    parent = (
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', {burn.format(0.3)!r}])\n"
        f"exec({burn.format(0.2)!r})\n"
        "child.wait()\n"
        "time.sleep(0.3)\n"  # a last sample sees both before they are gone
    )
    proc = subprocess.Popen([sys.executable, "-c", parent])
    window.track([proc.pid])
    proc.wait(timeout=60)
    used = window.result(tasks=1000)
    assert used["worker_cpu_s"] >= 0.45
    assert used["worker_cpu_us_per_task"] == pytest.approx(used["worker_cpu_s"] * 1000)
    assert 0.0 <= used["cpu_busy"] <= 1.0
