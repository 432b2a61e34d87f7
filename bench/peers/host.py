"""The main harness's side of the peers: run :mod:`bench.peers.run` in the peers' venv."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from ..config import Sizes
from ..databases import Database
from ..procs import ROOT

VENV = ROOT / "bench" / ".venv-peers"
PYTHON = VENV / "bin" / "python"
#: Which backends each peer runs on (huey and django-tasks also on SQLite).
PEER_BACKENDS = {
    "procrastinate": ("postgresql",),
    "pgqueuer": ("postgresql",),
    "pgqueuer-unlimited": ("postgresql",),
    "huey": ("sqlite", "postgresql"),
    "django-tasks": ("sqlite", "postgresql"),
}
WORKLOADS = ("enqueue", "enqueue_many", "drain", "latency")
#: Peers that run only some workloads: pgqueuer's uncapped setting changes
#: nothing on the enqueue side, and an idle worker's latency is the same.
ONLY = {"pgqueuer-unlimited": ("drain",)}


def workloads(peer: str) -> tuple[str, ...]:
    """The workloads ``peer`` runs."""
    return ONLY.get(peer, WORKLOADS)


def available() -> str | None:
    """None when the peers' venv is ready, else what to run."""
    if PYTHON.exists():
        return None
    return f"{VENV} is missing; run `make bench PEERS=1` (it installs bench/requirements-peers.txt)"


def _size(workload: str, sizes: Sizes) -> tuple[int, list[str]]:
    if workload == "enqueue":
        return sizes.enqueue, []
    if workload == "enqueue_many":
        return sizes.enqueue_many, ["--batch", str(sizes.batch)]
    if workload == "drain":
        return sizes.drain, []
    return sizes.latency, ["--interval", str(sizes.latency_interval)]


def run_peer(peer: str, workload: str, db: Database, sizes: Sizes) -> dict[str, Any]:
    count, extra = _size(workload, sizes)
    with tempfile.TemporaryDirectory(prefix="tt_bench_peer_") as state:
        url = db.libpq if db.backend == "postgresql" else str(Path(state) / "peer.sqlite3")
        argv = [
            str(PYTHON),
            "-m",
            "bench.peers.run",
            peer,
            workload,
            "--backend",
            db.backend,
            "--url",
            url,
            "--state",
            state,
            "--n",
            str(count),
            "--timeout",
            str(sizes.timeout),
            *extra,
        ]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=sizes.timeout + 120,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip()[-800:] or f"exit code {done.returncode}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if result.get("value") is None:
        raise LookupError(result.get("skipped", "not measured"))
    return result
