"""Checks on what callers give: each refusal is an InvalidInput naming the problem."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from tasktable.core.validation import (
    MAX_JSON_DEPTH,
    parse_datetime,
    parse_json_args,
    validate_args,
    validate_level,
    validate_max_attempts,
    validate_name,
    validate_priority,
    validate_queue,
    validate_timeout,
    validate_unique_key,
)
from tasktable.errors import InvalidInput

MIB = 1024 * 1024


def nested(depth: int, leaf: Any = None) -> Any:
    """``depth`` arrays one inside the other, the innermost holding ``leaf`` (or empty)."""
    value: Any = [] if leaf is None else [leaf]
    for _ in range(depth - 1):
        value = [value]
    return value


# -- args ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [{"order_ids": [1, 2]}, [1, 2], {}, [], ["357028"], {"a": {"b": [None, True, 1.5, "x"]}}],
)
def test_args_may_be_an_object_or_an_array(args: Any) -> None:
    value, text = validate_args(args, MIB)
    assert value == args
    assert json.loads(text) == args


def test_args_default_to_an_empty_object() -> None:
    assert validate_args(None, MIB) == ({}, "{}")


def test_args_given_as_json_text_or_bytes_are_parsed() -> None:
    assert validate_args('{"a": [1]}', MIB)[0] == {"a": [1]}
    assert validate_args(b"[1, 2]", MIB)[0] == [1, 2]


def test_a_tuple_is_stored_as_an_array() -> None:
    assert validate_args((1, 2), MIB) == ([1, 2], "[1,2]")


def test_text_is_kept_as_unicode() -> None:
    assert validate_args({"name": "Zoë"}, MIB)[1] == '{"name":"Zoë"}'


@pytest.mark.parametrize("args", [42, 1.5, True, "5", '"text"', "null", "true", b"7"])
def test_args_that_are_not_an_object_or_array_are_refused(args: Any) -> None:
    with pytest.raises(InvalidInput, match="object or array"):
        validate_args(args, MIB)


@pytest.mark.parametrize("text", ["{", "{'a': 1}", "[1,]", "", "order_ids=1"])
def test_invalid_json_text_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="not valid JSON"):
        validate_args(text, MIB)


def test_bytes_that_are_not_utf8_are_refused() -> None:
    with pytest.raises(InvalidInput):
        validate_args(b"\xff\xfe[1]", MIB)


@pytest.mark.parametrize("value", [{1, 2}, object(), b"raw", datetime(2026, 1, 1)])
def test_values_json_cannot_hold_are_refused(value: Any) -> None:
    with pytest.raises(InvalidInput, match="JSON"):
        validate_args({"value": value}, MIB)


def test_object_keys_must_be_strings() -> None:
    with pytest.raises(InvalidInput, match="keys"):
        validate_args({1: "one"}, MIB)


def test_size_limit_is_in_bytes_of_the_stored_json() -> None:
    at_limit = ["x" * 16]  # ["xxxxxxxxxxxxxxxx"] is 20 bytes
    assert validate_args(at_limit, 20)[1] == '["' + "x" * 16 + '"]'
    with pytest.raises(InvalidInput, match=r"21 bytes.*limit of 20 bytes"):
        validate_args(["x" * 17], 20)
    with pytest.raises(InvalidInput, match="limit"):  # 2 bytes each in UTF-8
        validate_args(["é" * 10], 20)


def test_size_limit_default_is_one_mebibyte() -> None:
    validate_args({"blob": "a" * (MIB - 20)}, MIB)
    with pytest.raises(InvalidInput, match="TASKTABLE_MAX_ARGS_BYTES"):
        validate_args({"blob": "a" * MIB}, MIB)


def test_nesting_up_to_the_depth_limit_is_accepted() -> None:
    validate_args(nested(MAX_JSON_DEPTH), MIB)
    validate_args(nested(MAX_JSON_DEPTH, leaf=1), MIB)
    validate_args(nested(MAX_JSON_DEPTH, leaf="x"), MIB)


@pytest.mark.parametrize("leaf", [None, 1])
def test_nesting_past_the_depth_limit_is_refused(leaf: Any) -> None:
    with pytest.raises(InvalidInput, match="deeper"):
        validate_args(nested(MAX_JSON_DEPTH + 1, leaf=leaf), MIB)


def test_objects_count_towards_depth_too() -> None:
    value: Any = {}
    for _ in range(MAX_JSON_DEPTH):
        value = {"a": value}
    with pytest.raises(InvalidInput, match="deeper"):
        validate_args(value, MIB)


def test_absurdly_deep_json_text_is_refused_not_crashed() -> None:
    text = "[" * 100_000 + "]" * 100_000
    with pytest.raises(InvalidInput):
        validate_args(text, 10 * MIB)


@pytest.mark.parametrize("text", ["[NaN]", '{"a": Infinity}', "[-Infinity]", "[1e400]"])
def test_nan_and_infinity_in_json_text_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"NaN|Infinity"):
        validate_args(text, MIB)


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_nan_and_infinity_in_python_values_are_refused(number: float) -> None:
    with pytest.raises(InvalidInput, match="NaN or Infinity"):
        validate_args({"deep": [{"x": number}]}, MIB)


def test_integers_too_long_for_json_are_refused() -> None:
    with pytest.raises(InvalidInput):
        validate_args("[" + "1" * 5000 + "]", MIB)
    with pytest.raises(InvalidInput):
        validate_args([10**5000], MIB)


def test_parse_json_args_accepts_any_json_value() -> None:
    assert parse_json_args("5") == 5
    with pytest.raises(InvalidInput, match="position"):
        parse_json_args('{"a": }')


# -- names, queues, numbers --------------------------------------------------------


def test_names() -> None:
    assert validate_name("90 - Delivered | Update Status") == "90 - Delivered | Update Status"
    assert validate_name("n" * 255) == "n" * 255
    for bad in ["", "   ", "n" * 256, "nul\x00", None, 5]:
        with pytest.raises(InvalidInput, match="name"):
            validate_name(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("queue", ["default", "emails", "a.b", "high-prio", "x_y:z", "q" * 100])
def test_queues_accepted(queue: str) -> None:
    assert validate_queue(queue) == queue


@pytest.mark.parametrize(
    "queue",
    ["", "two words", "q" * 101, "default\n", "\ndefault", "émails", "a/b", "a;b", None, 7],
)
def test_queues_refused(queue: Any) -> None:
    with pytest.raises(InvalidInput, match=r"(?i)queue"):
        validate_queue(queue)


@pytest.mark.parametrize("priority", [-100, -1, 0, 1, 100])
def test_priority_range(priority: int) -> None:
    assert validate_priority(priority) == priority


@pytest.mark.parametrize("priority", [-101, 101, 10**9, True, 1.0, "5", None])
def test_priority_refused(priority: Any) -> None:
    with pytest.raises(InvalidInput, match="Priority"):
        validate_priority(priority)


@pytest.mark.parametrize("value", [1, 3, 1000])
def test_max_attempts_accepted(value: int) -> None:
    assert validate_max_attempts(value) == value


@pytest.mark.parametrize("value", [0, -1, 1001, True, 2.0, "3", None])
def test_max_attempts_refused(value: Any) -> None:
    with pytest.raises(InvalidInput, match="max_attempts"):
        validate_max_attempts(value)


def test_timeout() -> None:
    assert validate_timeout(None) is None
    assert validate_timeout(5) == 5.0
    assert isinstance(validate_timeout(5), float)
    for bad in [0, -1, float("nan"), float("inf"), True, "10"]:
        with pytest.raises(InvalidInput, match="timeout"):
            validate_timeout(bad)  # type: ignore[arg-type]


def test_unique_key() -> None:
    assert validate_unique_key(None) is None
    assert validate_unique_key("order-42") == "order-42"
    assert validate_unique_key("k" * 255) == "k" * 255
    for bad in ["", "k" * 256, "k\x00", 42]:
        with pytest.raises(InvalidInput, match="unique key"):
            validate_unique_key(bad)  # type: ignore[arg-type]


def test_message_levels() -> None:
    for level in ["debug", "info", "success", "warning", "error"]:
        assert validate_level(level) == level
    with pytest.raises(InvalidInput, match="level"):
        validate_level("fatal")


# -- times ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-31T14:00:00Z", datetime(2026, 1, 31, 14, tzinfo=UTC)),
        ("2026-01-31T14:00:00+00:00", datetime(2026, 1, 31, 14, tzinfo=UTC)),
        ("2026-01-31T16:00:00+02:00", datetime(2026, 1, 31, 14, tzinfo=UTC)),
        ("2026-01-31T14:00:00", datetime(2026, 1, 31, 14, tzinfo=UTC)),
        ("2026-01-31 14:00:00.250000", datetime(2026, 1, 31, 14, 0, 0, 250000, tzinfo=UTC)),
        (" 2026-01-31 ", datetime(2026, 1, 31, tzinfo=UTC)),
    ],
)
def test_parse_datetime_gives_aware_utc(text: str, expected: datetime) -> None:
    parsed = parse_datetime(text)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


def test_parse_datetime_takes_datetimes() -> None:
    naive = datetime(2026, 1, 31, 14)
    assert parse_datetime(naive) == datetime(2026, 1, 31, 14, tzinfo=UTC)
    other = datetime(2026, 1, 31, 9, tzinfo=timezone(timedelta(hours=-5)))
    assert parse_datetime(other).hour == 14


@pytest.mark.parametrize("value", ["tomorrow", "", "2026-13-01", "31/01/2026", 1700000000, None])
def test_parse_datetime_refuses_what_is_not_iso_8601(value: Any) -> None:
    with pytest.raises(InvalidInput, match="ISO 8601"):
        parse_datetime(value)


def test_args_with_a_lone_surrogate_are_refused_clearly() -> None:
    from tasktable.core.validation import validate_args
    from tasktable.errors import InvalidInput

    with pytest.raises(InvalidInput, match="surrogate"):
        validate_args({"text": "\ud800"}, 1000)


class _Number(int):
    pass


class _Text(str):
    pass


def _walked(args: Any, limit: int) -> tuple[Any, str]:
    """``validate_args`` as it was before its shortcut: the full walk, then the text."""
    from tasktable.core import validation

    if isinstance(args, tuple):
        args = list(args)
    if not args:
        return validate_args(args, limit)
    validation._depth_and_finite(args)
    text = validation.dump_json(args)
    try:
        size = len(text.encode())
    except UnicodeEncodeError:
        raise InvalidInput("Args contain a lone surrogate character") from None
    if size > limit:
        raise InvalidInput(f"Args are {size} bytes, more than the limit of {limit} bytes")
    return json.loads(text), text


@pytest.mark.parametrize(
    "args",
    [
        {"a": 1, "b": [1, 2.5, None, True, "x"], "c": {"d": (1, 2)}},
        (1, (2, (3,))),
        {"n": _Number(5), "s": _Text("t"), _Text("k"): 1},
        {1: "int key"},
        {"nested": {None: 1}},
        {"nested": [{True: 1}]},
        {"ordered": __import__("collections").OrderedDict([(1, "a")])},
        __import__("collections").OrderedDict([(2, "b")]),
        {"nan": [1, [float("nan")]]},
        {"inf": float("-inf")},
        {"big": 10**5000},
        {"set": [{1}]},
        {"when": [datetime(2026, 1, 1)]},
        {"bytes": b"x"},
        nested(MAX_JSON_DEPTH, leaf=1),
        nested(MAX_JSON_DEPTH + 1),
        [{"a": [{"b": {}}]}] * 3,
        {"surrogate": "\ud800"},
        {"zoë": "é" * 5},
        ["é" * 9],
        ["é" * 10],
    ],
)
def test_the_shortcut_accepts_and_refuses_what_the_full_walk_does(args: Any) -> None:
    for limit in (MIB, 24):
        try:
            expected: Any = _walked(args, limit)
        except InvalidInput as exc:
            expected = (InvalidInput, str(exc)[:10])
        try:
            got: Any = validate_args(args, limit)
        except InvalidInput as exc:
            got = (InvalidInput, str(exc)[:10])
        assert got == expected
        if not isinstance(got[0], type):
            assert validate_args(args, limit, copy=False)[1] == got[1]
