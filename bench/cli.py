"""``python -m bench``: run the workloads, write bench/results/<date>.json and .md, print the table.

Environment (each also an option): ``BENCH_QUICK=1`` (small sizes),
``BENCH_RUNS`` (default 3; 1 when quick), ``BENCH_DBS`` (e.g. ``sqlite,postgresql``),
``BENCH_WORKLOADS`` (e.g. ``drain,latency``), ``PEERS=1`` (also the peers).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from .config import SIZES, env_flag, env_list
from .databases import BACKENDS, reachable
from .peers import host
from .procs import ROOT, worker_modes
from .report import markdown, write
from .runner import WORKLOADS, Outcome, peer_cases, run, tasktable_cases


def _commit() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    dirty = " (with uncommitted changes)" if git("status", "--porcelain", "--", "src") else ""
    return git("rev-parse", "--short", "HEAD") + dirty


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    quick = env_flag("BENCH_QUICK")
    parser.add_argument("--size", choices=sorted(SIZES), default="quick" if quick else "full")
    parser.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", 0)) or None)
    parser.add_argument(
        "--db",
        default=",".join(env_list("BENCH_DBS") or BACKENDS),
        help="comma-separated: sqlite,postgresql,mariadb",
    )
    parser.add_argument(
        "--workloads",
        default=",".join(env_list("BENCH_WORKLOADS") or WORKLOADS),
        help=f"comma-separated, from: {','.join(WORKLOADS)}",
    )
    parser.add_argument(
        "--peers",
        action="store_true",
        default=env_flag("PEERS"),
        help="also run procrastinate, pgqueuer, huey and django-tasks",
    )
    parser.add_argument("--no-tasktable", action="store_true", help="only the peers")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    sizes = SIZES[args.size]
    runs = args.runs or (3 if args.size == "full" else 1)
    names = [w for w in args.workloads.split(",") if w]
    unknown = set(names) - set(WORKLOADS)
    if unknown:
        print(f"Unknown workload(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    backends = []
    for backend in (b for b in args.db.split(",") if b):
        reason = reachable(backend)
        if reason:
            print(f"Skipping {backend}: {reason}", file=sys.stderr)
        else:
            backends.append(backend)
    cases = [] if args.no_tasktable else tasktable_cases(names, backends, sizes)
    if args.peers:
        missing = host.available()
        if missing:
            print(missing, file=sys.stderr)
            return 2
        cases += peer_cases(names, backends)
    modes = [m or "default (no --mode yet)" for m in worker_modes()]
    meta: dict[str, Any] = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "commit": _commit(),
        "size": args.size,
        "runs": runs,
        "sizes": dataclasses.asdict(sizes),
        "cpus": os.cpu_count(),
        "load_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "python": platform.python_version(),
        "worker_modes": modes,
        "peer_drain_variant": f"1x{sizes.slots} {worker_modes()[0] or 'default'}",
        "backends": backends,
    }
    print(
        f"{len(cases)} case(s) x {runs} run(s), {args.size} sizes, on {', '.join(backends)}",
        file=sys.stderr,
    )
    outcomes: list[Outcome] = [run(case, sizes, runs) for case in cases]
    meta["load_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    stem = dt.date.today().isoformat() + ("" if args.size == "full" else f"-{args.size}")
    path = write(args.out, stem, meta, outcomes)
    print(markdown(meta, outcomes))
    print(f"Results: {path} and {path.with_suffix('.md')}", file=sys.stderr)
    return 1 if any(o.errors for o in outcomes) else 0
