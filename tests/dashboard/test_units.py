"""The dashboard's pure helpers: action links, the chart, the grid's query string, formats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tasktable.core.task import ActionLink
from tasktable.dashboard.chart import throughput_chart
from tasktable.dashboard.query import GridQuery
from tasktable.dashboard.render import (
    action_href,
    action_target,
    fmt_count,
    fmt_seconds,
    handler_parts,
)
from tasktable.dashboard.web import decode_flash, encode_flash


def link(path: str | None, **params: object) -> ActionLink:
    return ActionLink(text="Download CSV", route_path=path, route_params=params or None)


@pytest.mark.parametrize(
    ("path", "base", "expected"),
    [
        ("tasks/7/files/orders.csv", "/", "/tasks/7/files/orders.csv"),
        ("tasks/7/files/orders.csv", "/admin/tasks/", "/admin/tasks/tasks/7/files/orders.csv"),
        (
            "reports/report/download",
            "https://shop.example/admin/",
            "https://shop.example/admin/reports/report/download",
        ),
        ("/reports/x", "https://shop.example/admin/", "https://shop.example/reports/x"),
        ("https://cdn.example/f.csv", "/", "https://cdn.example/f.csv"),
        ("javascript:alert(1)", "/", None),
        (" JaVaScRiPt:alert(1)", "/", None),
        ("java\tscript:alert(1)", "/", None),
        ("java\nscript:alert(1)", "/", None),
        ("data:text/html,<script>alert(1)</script>", "/", None),
        ("vbscript:x", "https://shop.example/", None),
        ("\\\\evil.example/x", "/", None),
        ("", "/", None),
    ],
)
def test_action_links_resolve_against_the_base_and_never_run_script(
    path: str, base: str, expected: str | None
) -> None:
    assert action_href(link(path), base) == expected


def test_route_params_become_the_query_string_except_link_options() -> None:
    href = action_href(
        link("reports/download", file_name="a b.csv", task_id=7, target="_self", _secure=True),
        "/",
    )
    assert href == "/reports/download?file_name=a+b.csv&task_id=7"
    nested = action_href(link("x", ok=1, skip={"a": 1}), "/")
    assert nested == "/x?ok=1"
    assert action_target(link("x", target="_blank")) == "_blank"
    assert action_target(link("x", target="javascript:x")) is None
    assert action_href(None, "/") is None


def test_the_chart_stacks_success_under_error_with_a_nice_scale() -> None:
    start = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    buckets = [(start + timedelta(minutes=i), i, 1 if i == 3 else 0) for i in range(6)]
    chart = throughput_chart(buckets, 60)
    assert len(chart.bars) == 6 and chart.total_success == 15 and chart.total_error == 1
    assert [t.label for t in chart.y_ticks] == ["0", "2.5", "5"]  # peak 5 -> scale to 5
    third = chart.bars[3]
    assert third.y_error + third.h_error == pytest.approx(third.y_success)
    assert chart.bars[0].h_success == 0
    assert chart.x_ticks[0].label == "12:00"
    empty = throughput_chart([(start, 0, 0)], 3600)
    assert empty.total_success == 0 and empty.y_ticks[-1].label == "4"


def test_the_grid_query_round_trips_and_drops_what_it_cannot_use() -> None:
    query = GridQuery.parse(
        [
            ("status", "error,pending"),
            ("status", "bogus"),
            ("name", "  Export  "),
            ("sort", "password_hash"),
            ("limit", "70"),
            ("created_from", "2026-01-31"),
            ("created_to", "31/01/2026"),
        ]
    )
    assert query.statuses == ("error", "pending")
    assert query.name == "Export" and query.sort == "-id" and query.limit == 50
    assert query.created_from == "2026-01-31" and query.created_to == ""
    assert len(query.problems) == 3
    task_query = query.task_query()
    assert task_query.created_after == datetime(2026, 1, 31, tzinfo=UTC)
    assert task_query.statuses == ("error", "pending")
    assert GridQuery.parse(query.params()) == query
    assert query.sorted_by("", "name") == (
        "/?status=error&status=pending&name=Export&created_from=2026-01-31&sort=name"
    )
    named = GridQuery.parse([("sort", "name")])
    assert named.sorted_by("", "name").endswith("sort=-name")


def test_formats() -> None:
    assert fmt_count(10_001, 10_000) == "10,000+"
    assert fmt_count(1234) == "1,234"
    assert fmt_seconds(75) == "1m 15s" and fmt_seconds(None) == "—"
    assert fmt_seconds(90061) == "1d 1h"
    assert handler_parts("pkg.mod:Cls") == ("pkg.mod", "Cls")
    assert handler_parts("pkg.mod.Cls") == ("pkg.mod", "Cls")


def test_flash_cookies_are_signed() -> None:
    value = encode_flash(b"key", [("success", "3 tasks will run again in the background.")])
    assert decode_flash(b"key", value) == [("success", "3 tasks will run again in the background.")]
    assert decode_flash(b"other key", value) == []
    assert decode_flash(b"key", "garbage") == []
    assert decode_flash(b"key", None) == []
