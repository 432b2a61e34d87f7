"""Durations: the text people write (``30d``, ``1h30m``) and the short form we print."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tasktable.core.durations import format_duration, parse_duration
from tasktable.errors import InvalidInput


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("10m", 600),
        ("2h", 7200),
        ("30d", 30 * 86400),
        ("1w", 7 * 86400),
        ("250ms", 0.25),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        ("1d2h3m4s", 86400 + 7200 + 180 + 4),
        ("1.5h", 5400),
        ("  45S ", 45),
        ("90", 90),
        ("0.5", 0.5),
        ("0s", 0),
    ],
)
def test_parse_accepts_units_and_bare_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_parse_passes_numbers_and_timedeltas_through() -> None:
    assert parse_duration(12) == timedelta(seconds=12)
    assert parse_duration(1.5) == timedelta(seconds=1.5)
    assert parse_duration(timedelta(minutes=3)) == timedelta(minutes=3)


@pytest.mark.parametrize(
    "text",
    ["30x", "", "   ", "s", "h30", "30 days", "1.5.5s", "30s garbage", "-5s", "1h-30m", "ten"],
)
def test_parse_refuses_bad_text(text: str) -> None:
    with pytest.raises(InvalidInput, match="uration"):
        parse_duration(text)


@pytest.mark.parametrize("value", ["-5", -5, -0.1, "-1.5"])
def test_parse_refuses_negative_durations(value: str | float) -> None:
    with pytest.raises(InvalidInput, match="negative"):
        parse_duration(value)


@pytest.mark.parametrize(
    "value", ["nan", "inf", "-inf", "infinity", "1e400", float("nan"), float("inf")]
)
def test_parse_refuses_nan_and_infinity(value: str | float) -> None:
    with pytest.raises(InvalidInput):
        parse_duration(value)


@pytest.mark.parametrize("value", ["99999999999999d", "1e30", 1e30])
def test_parse_refuses_durations_too_long_to_represent(value: str | float) -> None:
    with pytest.raises(InvalidInput):
        parse_duration(value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0ms"),
        (0.85, "850ms"),
        (1, "1s"),
        (59, "59s"),
        (60, "1m"),
        (250, "4m 10s"),
        (3600, "1h"),
        (3661, "1h 1m"),
        (2 * 86400 + 3 * 3600 + 5, "2d 3h"),
    ],
)
def test_format_is_short_and_human(seconds: float, text: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == text
    assert format_duration(seconds) == text


def test_format_never_prints_a_thousand_milliseconds() -> None:
    assert format_duration(0.9996) == "1s"


@pytest.mark.parametrize("seconds", [1, 59, 60, 3600, 86400, 90061 - 61])
def test_format_then_parse_round_trips_whole_units(seconds: int) -> None:
    delta = timedelta(seconds=seconds)
    assert parse_duration(format_duration(delta)) == delta
