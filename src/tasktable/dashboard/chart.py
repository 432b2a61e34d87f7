"""The throughput chart as plain geometry, drawn server-side as SVG (no chart library)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

WIDTH = 1200
HEIGHT = 240
LEFT = 48  # room for the y-axis labels
BOTTOM = 24  # room for the x-axis labels
TOP = 10


@dataclass(frozen=True, kw_only=True)
class Bar:
    x: float
    width: float
    y_success: float
    h_success: float
    y_error: float
    h_error: float
    title: str


@dataclass(frozen=True, kw_only=True)
class Tick:
    pos: float
    label: str


@dataclass(frozen=True, kw_only=True)
class Chart:
    width: int
    height: int
    left: int
    top: int
    bottom: float  # y of the x axis
    bars: list[Bar]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    total_success: int
    total_error: int
    label: str  # for screen readers


def _nice_max(value: int) -> int:
    """The smallest of 1, 2, 5 x 10^n at or above ``value`` (at least 4)."""
    if value <= 4:
        return 4
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude >= value:
                return step * magnitude
        magnitude *= 10


def _time_label(start: datetime, bucket_seconds: int) -> str:
    if bucket_seconds >= 86400:
        return start.strftime("%b %d")
    if bucket_seconds >= 3600:
        return start.strftime("%d %H:%M")
    return start.strftime("%H:%M")


def throughput_chart(buckets: list[tuple[datetime, int, int]], bucket_seconds: int) -> Chart:
    """Stacked bars (success under error) per bucket, oldest on the left."""
    plot_w = WIDTH - LEFT - 8
    plot_h = HEIGHT - TOP - BOTTOM
    axis_y = float(TOP + plot_h)
    peak = _nice_max(max((ok + err for _, ok, err in buckets), default=0))
    slot = plot_w / max(1, len(buckets))
    gap = min(2.0, slot * 0.2)
    bars: list[Bar] = []
    for i, (start, ok, err) in enumerate(buckets):
        h_ok = plot_h * ok / peak
        h_err = plot_h * err / peak
        label = _time_label(start, bucket_seconds)
        bars.append(
            Bar(
                x=round(LEFT + i * slot + gap / 2, 2),
                width=round(max(1.0, slot - gap), 2),
                y_success=round(axis_y - h_ok, 2),
                h_success=round(h_ok, 2),
                y_error=round(axis_y - h_ok - h_err, 2),
                h_error=round(h_err, 2),
                title=f"{label} UTC: {ok:,} success, {err:,} error",
            )
        )
    y_ticks = [
        Tick(pos=round(axis_y - plot_h * f, 2), label=f"{peak * f:,.1f}".removesuffix(".0"))
        for f in (0.0, 0.5, 1.0)
    ]
    every = max(1, len(buckets) // 6)
    x_ticks = [
        Tick(
            pos=round(LEFT + i * slot + slot / 2, 2),
            label=_time_label(buckets[i][0], bucket_seconds),
        )
        for i in range(0, len(buckets), every)
    ]
    total_ok = sum(ok for _, ok, _ in buckets)
    total_err = sum(err for _, _, err in buckets)
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        top=TOP,
        bottom=axis_y,
        bars=bars,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        total_success=total_ok,
        total_error=total_err,
        label=f"Finished tasks per bucket: {total_ok:,} success and {total_err:,} error in all",
    )
