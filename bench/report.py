"""The results file (JSON) and the markdown tables printed after a run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .peers.host import PEER_BACKENDS
from .runner import Outcome

BACKEND_ORDER = ("sqlite", "postgresql", "mariadb")


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def cell(outcome: Outcome) -> str:
    if outcome.skipped:
        return "n/a"
    run = outcome.median_run
    if not run:
        return "error"
    flag = f" ({len(outcome.errors)} failed)" if outcome.errors else ""
    w = outcome.workload
    if w == "drain":
        busy = ""
        if "cpu_busy" in run:  # all cores, any process; workers = their cores used on average
            cores = run["worker_cpu_s"] / run["wall_s"] if run.get("wall_s") else 0.0
            busy = f"; CPU {run['cpu_busy']:.0%} busy, workers {cores:.1f} cores"
        return f"{_num(run['value'])} (active {_num(run['active_per_s'])}{busy}){flag}"
    if w == "latency":
        return f"{run['p50_ms']:.1f} / {run['p99_ms']:.1f}{flag}"
    if w == "overhead":
        return f"{run['value']:.2f} s (ideal {run['ideal_s']:.1f}){flag}"
    if w == "roundtrips":
        return (
            f"{run['statements_per_task']:.2f} stmts, "
            f"{run['round_trips_per_task']:.2f} round trips{flag}"
        )
    if w == "memory":
        idle, peak = run["idle"], run["drain_peak"]
        kids = (
            f", {idle['children']} slot procs of {idle['child_rss_mb']:.0f}"
            if idle["children"]
            else ""
        )
        return (
            f"{idle['parent_rss_mb']:.0f} (peak {idle.get('parent_peak_rss_mb', 0):.0f})"
            f"{kids}; per slot {run['per_slot_idle_mb']:.0f}; "
            f"drain peak {peak['total_rss_mb']:.0f} (PSS {peak['total_pss_mb']:.0f}){flag}"
        )
    if w == "scale":
        e, h = run["empty"], run["history"]
        return (
            f"claim x{run['claim_ratio']:.2f} ({e['claim_ms_p50']:.2f} -> "
            f"{h['claim_ms_p50']:.2f} ms); drain x{run['drain_ratio']:.2f}; "
            f"list {h['list_first_page_ms']:.1f} ms, stats {h['stats_ms']:.0f} ms{flag}"
        )
    return f"{_num(run['value'])}{flag}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def tasktable_table(outcomes: Sequence[Outcome]) -> list[str]:
    mine = [o for o in outcomes if o.system == "tasktable"]
    backends = [b for b in BACKEND_ORDER if any(o.backend == b for o in mine)]
    keys: list[tuple[str, str, str]] = []
    for o in mine:
        if (o.workload, o.variant, o.unit) not in keys:
            keys.append((o.workload, o.variant, o.unit))
    rows = []
    for workload, variant, unit in keys:
        found = {o.backend: o for o in mine if (o.workload, o.variant) == (workload, variant)}
        rows.append(
            [workload, variant, unit, *(cell(found[b]) if b in found else "" for b in backends)]
        )
    return _table(["workload", "variant", "unit", *backends], rows)


def peers_table(outcomes: Sequence[Outcome], drain_variant: str) -> list[str]:
    peers = [p for p in PEER_BACKENDS if any(o.system == p for o in outcomes)]
    if not peers:
        return []
    index = {(o.system, o.workload, o.backend): o for o in outcomes if o.system != "tasktable"}
    for o in outcomes:
        if o.system == "tasktable" and o.workload in ("enqueue", "enqueue_many", "latency"):
            index[("tasktable", o.workload, o.backend)] = o
        if o.system == "tasktable" and o.workload == "drain" and o.variant == drain_variant:
            index[("tasktable", "drain", o.backend)] = o
    rows = []
    for workload in ("enqueue", "enqueue_many", "drain", "latency"):
        for backend in ("sqlite", "postgresql"):
            if not any((p, workload, backend) in index for p in peers):
                continue
            mine = index.get(("tasktable", workload, backend))
            row = [workload, backend, cell(mine) if mine else ""]
            ratios = []
            for peer in peers:
                theirs = index.get((peer, workload, backend))
                row.append(cell(theirs) if theirs else "")
                ok = mine and theirs and mine.value and theirs.value
                ratios.append(f"{mine.value / theirs.value:.2f}" if ok else "")  # type: ignore[union-attr,operator]
            rows.append(row + ratios)
    header = ["workload", "db", "tasktable", *peers, *(f"tt/{p}" for p in peers)]
    return _table(header, rows)


def markdown(meta: dict[str, Any], outcomes: Sequence[Outcome]) -> str:
    lines = [
        f"# tasktable benchmark, {meta['date']}",
        "",
        f"Commit `{meta['commit']}`, {meta['size']} sizes, median of {meta['runs']} run(s); "
        f"{meta['cpus']} CPUs, load average at start {meta['load_start']}; worker modes: "
        f"{', '.join(meta['worker_modes'])}.",
        "",
    ]
    lines += tasktable_table(outcomes)
    peer_lines = peers_table(outcomes, meta["peer_drain_variant"])
    if peer_lines:
        lines += [
            "",
            "## Peers (same run; tt/peer = tasktable / peer; for latency lower is better)",
            "",
        ]
        lines += peer_lines
    errors = [(o, e) for o in outcomes for e in o.errors]
    if errors:
        lines += ["", "## Errors", ""]
        lines += [f"- {o.system} {o.workload} {o.variant} on {o.backend}: {e}" for o, e in errors]
    return "\n".join(lines) + "\n"


def write(folder: Path, stem: str, meta: dict[str, Any], outcomes: Sequence[Outcome]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.json"
    serial = 2
    while path.exists():
        path = folder / f"{stem}-{serial}.json"
        serial += 1
    payload = {"meta": meta, "results": [o.to_json() for o in outcomes]}
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    path.with_suffix(".md").write_text(markdown(meta, outcomes))
    return path
