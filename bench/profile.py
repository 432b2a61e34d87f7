"""Where a drain spends its time: ``python -m bench.profile --db postgresql --mode process``.

Loads pending no-op tasks into a fresh database, runs one burst worker under
py-spy (``pip install -e '.[bench]'``; every thread and slot process, CPU
samples only), writes the collapsed stacks to ``bench/results/profile-*.txt``
(feed them to flamegraph.pl or speedscope.app) and prints the functions
with the most samples, inclusive and exclusive, per process role.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from .databases import fresh
from .procs import ROOT, TASKTABLE, worker_env
from .table import finished_times, load, open_table

_LINE = re.compile(r"^(.*) (\d+)$")
_FRAME = re.compile(r"^(.*) \((.*?)(?::\d+)?\)$")


def _frame(raw: str) -> str:
    """``func (path/to/module.py:12)`` -> ``func (module.py)``: lines merged."""
    found = _FRAME.match(raw.strip())
    if not found:
        return raw.strip()
    return f"{found.group(1)} ({Path(found.group(2)).name})"


def summarize(path: Path, top: int = 25) -> str:
    inclusive: Counter[str] = Counter()
    exclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        found = _LINE.match(line)
        if not found:
            continue
        count = int(found.group(2))
        frames = [_frame(f) for f in found.group(1).split(";") if f]
        total += count
        for name in set(frames):
            inclusive[name] += count
        if frames:
            exclusive[frames[-1]] += count
    out = [f"{total} CPU samples", "", "inclusive (share of all samples):"]
    out += [f"  {n / total:6.1%}  {name}" for name, n in inclusive.most_common(top)]
    out += ["", "exclusive (where the CPU was when sampled):"]
    out += [f"  {n / total:6.1%}  {name}" for name, n in exclusive.most_common(top)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--db", default="postgresql", choices=["sqlite", "postgresql", "mariadb"])
    parser.add_argument("--mode", default=None, help="worker --mode (thread or process)")
    parser.add_argument("--tasks", type=int, default=5_000)
    parser.add_argument("--slots", type=int, default=5)
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        print("py-spy is not installed: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"profile-{args.db}-{args.mode or 'default'}-{time.strftime('%Y%m%d-%H%M%S')}"
    raw = args.out / f"{stem}.txt"
    with fresh(args.db) as db, open_table(db.url) as table:
        load(table, args.tasks)
        worker = [str(TASKTABLE), "--db", db.url, "worker", "--burst", "--slots", str(args.slots)]
        if args.mode:
            worker += ["--mode", args.mode]
        started = time.time()
        subprocess.run(
            [
                spy,
                "record",
                "--subprocesses",
                "--rate",
                str(args.rate),
                "--gil",
                "--format",
                "raw",
                "-o",
                str(raw),
                "--",
                *worker,
            ],
            env=worker_env(),
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        times = finished_times(table, args.tasks)
    rate = args.tasks / (times.last_finish - times.first_start)
    print(
        f"{args.tasks} tasks on {args.db}, mode {args.mode or 'default'}: "
        f"{rate:,.0f} tasks/s while sampled ({times.last_finish - started:.1f} s from spawn)"
    )
    print(summarize(raw))
    print(f"\nCollapsed stacks: {raw}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
