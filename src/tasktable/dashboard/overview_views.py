"""The overview: counts, throughput over time (SVG), queue depths, oldest pending, workers."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from starlette.responses import Response

from ..core.status import TaskStatus
from ..ops import TaskQuery
from .chart import throughput_chart
from .context import Dashboard, Req

#: The chart's ranges: (label, bucket seconds, buckets).
RANGES = {
    "1h": ("Last hour", 60, 60),
    "24h": ("Last 24 hours", 900, 96),
    "7d": ("Last 7 days", 3600, 168),
}
#: Running tasks read to count the slots in use per worker.
RUNNING_SAMPLE = 500


@dataclass(frozen=True, kw_only=True)
class QueueRow:
    name: str
    pending: int
    running: int
    error: int
    total: int


def overview(dash: Dashboard, req: Req) -> Response:
    chosen = req.request.query_params.get("range", "1h")
    if chosen not in RANGES:
        chosen = "1h"
    label, bucket_seconds, buckets = RANGES[chosen]
    ops = dash.ops
    data = ops.stats(bucket_seconds=bucket_seconds, buckets=buckets)
    running = ops.list_tasks(
        TaskQuery(statuses=(TaskStatus.RUNNING.value,)), sort="id", limit=RUNNING_SAMPLE
    ).tasks
    in_use = Counter(t.worker for t in running if t.worker)
    queues = sorted(
        (
            QueueRow(
                name=name,
                pending=counts.get("pending", 0),
                running=counts.get("running", 0),
                error=counts.get("error", 0),
                total=sum(counts.values()),
            )
            for name, counts in data.stats.by_queue.items()
        ),
        key=lambda q: (-q.pending, q.name),
    )
    return req.page(
        dash,
        "overview.html",
        title="Overview",
        nav="overview",
        data=data,
        stats=data.stats,
        chart=throughput_chart(data.throughput, bucket_seconds),
        ranges=RANGES,
        range=chosen,
        range_label=label,
        queues=queues,
        in_use=in_use,
        workers_alive=sum(1 for _, alive in data.workers if alive),
        statuses=[s.value for s in TaskStatus],
    )
