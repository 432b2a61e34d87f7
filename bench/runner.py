"""Cases (workload x variant x backend x system), each run N times on fresh databases."""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from . import ceiling, roundtrips, scale, workloads
from .config import Sizes
from .databases import Database, fresh
from .peers import host
from .procs import worker_modes
from .stats import median

Fn = Callable[[Database, Sizes], dict[str, Any]]


@dataclass(frozen=True)
class Case:
    system: str
    workload: str
    variant: str
    backend: str
    unit: str
    fn: Fn = field(compare=False, repr=False)


@dataclass
class Outcome:
    system: str
    workload: str
    variant: str
    backend: str
    unit: str
    value: float | None = None
    values: list[float] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    skipped: str | None = None

    @property
    def median_run(self) -> dict[str, Any]:
        """The run whose value is the median (the lower middle for an even count)."""
        ok = sorted((r for r in self.runs if "value" in r), key=lambda r: r["value"])
        return ok[(len(ok) - 1) // 2] if ok else {}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


WORKLOADS = (
    "enqueue",
    "enqueue_many",
    "drain",
    "latency",
    "overhead",
    "ceiling",
    "roundtrips",
    "memory",
    "scale",
)


def tasktable_cases(names: Sequence[str], backends: Sequence[str], sizes: Sizes) -> list[Case]:
    modes = worker_modes()
    default = modes[0]
    label = {None: "default"}
    cases: list[Case] = []
    for backend in backends:

        def add(workload: str, variant: str, unit: str, fn: Fn, *, b: str = backend) -> None:
            if workload in names:
                cases.append(Case("tasktable", workload, variant, b, unit, fn))

        add("enqueue", "single", "tasks/s", workloads.enqueue)
        add("enqueue_many", f"batches of {sizes.batch}", "tasks/s", workloads.enqueue_many)
        for mode in modes:
            add(
                "drain",
                f"1x{sizes.slots} {label.get(mode, mode)}",
                "tasks/s",
                functools.partial(workloads.drain, workers=1, mode=mode),
            )
        add(
            "drain",
            f"{sizes.workers}x{sizes.slots} {label.get(default, default)}",
            "tasks/s",
            functools.partial(workloads.drain, workers=sizes.workers, mode=default),
        )
        add("latency", "p50 ms (p99)", "ms", functools.partial(workloads.latency, mode=default))
        add(
            "overhead",
            f"{sizes.overhead}x50ms on {sizes.slots} slots",
            "s",
            functools.partial(workloads.overhead, mode=default),
        )
        for batch in sizes.ceiling_batches:
            add("ceiling", f"B={batch}", "rows/s", functools.partial(ceiling.ceiling, batch=batch))
        add("roundtrips", "in-process, thread slots", "stmts/task", roundtrips.roundtrips)
        for mode in modes:
            add(
                "memory",
                f"{label.get(mode, mode)}: parent RSS idle",
                "MB",
                functools.partial(workloads.worker_memory, mode=mode),
            )
        if backend == "postgresql":
            add("scale", f"claim p50 at {sizes.scale_history:,} rows / empty", "ratio", scale.scale)
    return cases


def peer_cases(names: Sequence[str], backends: Sequence[str]) -> list[Case]:
    cases = []
    for peer, peer_backends in host.PEER_BACKENDS.items():
        for backend in (b for b in backends if b in peer_backends):
            for workload in (w for w in host.workloads(peer) if w in names):
                fn = functools.partial(_peer, peer=peer, workload=workload)
                unit = "ms" if workload == "latency" else "tasks/s"
                cases.append(Case(peer, workload, "peer", backend, unit, fn))
    return cases


def _peer(db: Database, sizes: Sizes, *, peer: str, workload: str) -> dict[str, Any]:
    return host.run_peer(peer, workload, db, sizes)


def run(case: Case, sizes: Sizes, runs: int) -> Outcome:
    outcome = Outcome(case.system, case.workload, case.variant, case.backend, case.unit)
    for index in range(runs):
        started = time.monotonic()
        try:
            with fresh(case.backend) as db:
                result = case.fn(db, sizes)
        except LookupError as exc:  # the peer has no such API
            outcome.skipped = str(exc)
            break
        except Exception as exc:
            outcome.errors.append(f"{type(exc).__name__}: {str(exc)[:600]}")
            note = f"ERROR {outcome.errors[-1][:200]}"
        else:
            result["elapsed_s"] = time.monotonic() - started
            outcome.runs.append(result)
            outcome.values.append(float(result["value"]))
            note = f"{result['value']:.4g} {case.unit}"
        print(
            f"  {case.system:13} {case.backend:10} {case.workload:12} {case.variant:34} "
            f"run {index + 1}/{runs}: {note}",
            file=sys.stderr,
            flush=True,
        )
    outcome.value = median(outcome.values)
    return outcome
