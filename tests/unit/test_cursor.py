"""Keyset cursors: opaque to callers, refused as InvalidInput when bad or foreign."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from tasktable.errors import InvalidInput
from tasktable.storage.base import SORT_FIELDS, Sort
from tasktable.storage.rows import check_sort, decode_cursor, encode_cursor


def raw_cursor(data: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("sort", "value"),
    [
        (Sort(field="id", descending=True), 17),
        (Sort(field="priority", descending=False), -5),
        (Sort(field="name", descending=True), "90 - Delivered | Update Status"),
        (Sort(field="created_at", descending=True), datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)),
        (Sort(field="run_at", descending=False), datetime(2026, 1, 2, tzinfo=UTC)),
        (Sort(field="status", descending=False), "pending"),
    ],
)
def test_round_trip(sort: Sort, value: Any) -> None:
    cursor = encode_cursor(sort, value, 42)
    assert decode_cursor(sort, cursor) == (value, 42)
    assert "=" not in cursor and "/" not in cursor and "+" not in cursor


def test_decoded_times_are_aware() -> None:
    sort = Sort(field="created_at")
    value, _ = decode_cursor(sort, encode_cursor(sort, datetime(2026, 1, 2, tzinfo=UTC), 1))
    assert value.tzinfo is not None


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not a cursor",
        "!!!!",
        "é",
        "abc",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        raw_cursor({"a": 1}),
        raw_cursor([1, 2, 3]),
        raw_cursor("text"),
        raw_cursor(None),
        raw_cursor(["id", True, 5]),
        raw_cursor(["id", True, 5, "7"]),
        raw_cursor(["id", True, 5, 7.5]),
        raw_cursor(["id", True, 5, None]),
    ],
)
def test_bad_cursors_are_invalid_input(cursor: str) -> None:
    with pytest.raises(InvalidInput, match="cursor"):
        decode_cursor(Sort(field="id", descending=True), cursor)


def test_a_cursor_of_another_sort_is_refused() -> None:
    cursor = encode_cursor(Sort(field="name", descending=True), "x", 3)
    with pytest.raises(InvalidInput, match="cursor"):
        decode_cursor(Sort(field="name", descending=False), cursor)
    with pytest.raises(InvalidInput, match="cursor"):
        decode_cursor(Sort(field="queue", descending=True), cursor)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("created_at", "yesterday"),
        ("created_at", 5),
        ("run_at", None),
        ("priority", "high"),
        ("priority", None),
        ("priority", 1.5),
        ("name", 5),
        ("name", None),
        ("id", "x"),
    ],
)
def test_a_tampered_value_of_the_wrong_type_is_refused(field: str, value: Any) -> None:
    sort = Sort(field=field, descending=True)
    with pytest.raises(InvalidInput, match="cursor"):
        decode_cursor(sort, raw_cursor([field, True, value, 3]))


def test_sort_allowlist() -> None:
    for field in SORT_FIELDS:
        assert check_sort(Sort(field=field)).field == field
    for bad in ["args", "messages", "claim_token", "id; DROP TABLE tasktable_task", ""]:
        with pytest.raises(InvalidInput, match="sort by one of"):
            check_sort(Sort(field=bad))
