"""Run one workload on one peer: ``python -m bench.peers.run PEER WORKLOAD --backend B --url U``.

Runs inside ``bench/.venv-peers``. Prints one JSON line whose ``value`` is the
headline figure, measured the way :mod:`bench.workloads` measures tasktable:
enqueue and enqueue_many in tasks/s from one client; drain in tasks/s from
the workers' spawn to the last success, checked exactly-once; latency as
p50 (and p99) of start minus enqueue with an idle worker, in ms.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import signal
import subprocess
import sys
import time
from typing import Any

from ..cpu import CpuWindow
from .base import Peer

PEERS = {
    "procrastinate": "bench.peers.procrastinate_peer:Procrastinate",
    "pgqueuer": "bench.peers.pgqueuer_peer:Pgqueuer",
    "pgqueuer-unlimited": "bench.peers.pgqueuer_peer:PgqueuerUnlimited",
    "huey": "bench.peers.huey_peer:Huey",
    "django-tasks": "bench.peers.django_peer:DjangoTasks",
}


def peer_class(name: str) -> type[Peer]:
    module, _, attr = PEERS[name].partition(":")
    cls: type[Peer] = getattr(importlib.import_module(module), attr)
    return cls


def _pct(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(pct / 100 * len(ordered))) - 1]


def _workers(args: argparse.Namespace, count: int, *, burst: bool, expect: int) -> list[Any]:
    argv = [
        sys.executable,
        "-m",
        "bench.peers.run",
        args.peer,
        "worker",
        "--backend",
        args.backend,
        "--url",
        args.url,
        "--state",
        args.state,
        "--expect",
        str(expect),
    ]
    if burst:
        argv.append("--burst")
    return [
        subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(count)
    ]


def _wait(procs: list[Any], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for other in procs:
                other.kill()
            raise RuntimeError(f"worker still running after {timeout:.0f}s") from None
        if proc.returncode not in (0, -signal.SIGINT):
            err = proc.stderr.read().decode(errors="replace").strip()[-800:]
            raise RuntimeError(f"worker exited {proc.returncode}: {err}")


def _until(peer: Peer, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while peer.done() < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{count} tasks not done after {timeout:.0f}s")
        time.sleep(0.05)


def enqueue(peer: Peer, args: argparse.Namespace) -> dict[str, Any]:
    peer.setup()
    peer.enqueue()
    started = time.perf_counter()
    for _ in range(args.n):
        peer.enqueue()
    elapsed = time.perf_counter() - started
    return {"value": args.n / elapsed, "seconds": elapsed, "tasks": args.n}


def enqueue_many(peer: Peer, args: argparse.Namespace) -> dict[str, Any]:
    if not peer.bulk:
        return {"value": None, "skipped": f"{peer.name} has no bulk enqueue"}
    peer.setup()
    started = time.perf_counter()
    for start in range(0, args.n, args.batch):
        peer.enqueue_bulk(min(args.batch, args.n - start))
    elapsed = time.perf_counter() - started
    return {"value": args.n / elapsed, "seconds": elapsed, "tasks": args.n, "batch": args.batch}


def drain(peer: Peer, args: argparse.Namespace) -> dict[str, Any]:
    peer.setup()
    for start in range(0, args.n, args.batch):
        if peer.bulk:
            peer.enqueue_bulk(min(args.batch, args.n - start))
        else:
            for _ in range(min(args.batch, args.n - start)):
                peer.enqueue()
    peer.analyze()
    cpu = CpuWindow.start()
    spawned = time.time()
    procs = _workers(args, peer.processes, burst=True, expect=args.n)
    cpu.track(p.pid for p in procs)
    _wait(procs, args.timeout)
    cpu_used = cpu.result(args.n)
    records = peer.records(args.n)
    last = max(r.finished for r in records)
    first = min(r.started for r in records)
    return {
        "value": args.n / (last - spawned),
        "active_per_s": args.n / (last - first),
        "wall_s": last - spawned,
        "startup_s": first - spawned,
        "tasks": args.n,
        "exactly_once": True,
        **cpu_used,
    }


def latency(peer: Peer, args: argparse.Namespace) -> dict[str, Any]:
    peer.setup()
    procs = _workers(args, peer.processes, burst=False, expect=0)
    try:
        peer.enqueue()  # warm-up: the workers are up and idle after it
        _until(peer, 1, 120)
        time.sleep(1.0)
        started = time.monotonic()
        for i in range(args.n):
            pause = started + i * args.interval - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            peer.enqueue()
        _until(peer, args.n + 1, args.timeout)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)
        _wait(procs, 60)
    records = sorted(peer.records(args.n + 1))[1:]
    lat = [(r.started - r.enqueued) * 1000 for r in records]
    return {
        "value": _pct(lat, 50),
        "p50_ms": _pct(lat, 50),
        "p99_ms": _pct(lat, 99),
        "max_ms": max(lat),
        "tasks": args.n,
    }


WORKLOADS = {"enqueue": enqueue, "enqueue_many": enqueue_many, "drain": drain, "latency": latency}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peers.run")
    parser.add_argument("peer", choices=sorted(PEERS))
    parser.add_argument("workload", choices=[*WORKLOADS, "worker"])
    parser.add_argument("--backend", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--state", required=True)
    parser.add_argument("--n", type=int, default=0)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=0.01)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--expect", type=int, default=0)
    parser.add_argument("--burst", action="store_true")
    args = parser.parse_args(argv)
    peer = peer_class(args.peer)(args.backend, args.url, args.state)
    if args.workload == "worker":
        peer.run_worker(args.burst, args.expect)
        return 0
    try:
        result = WORKLOADS[args.workload](peer, args)
    finally:
        peer.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
