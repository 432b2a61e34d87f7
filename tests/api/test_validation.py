"""The server's checks and the published document agree (no I/O): what Schemathesis'
validator (jsonschema_rs, ECMA regexes) calls valid, the server accepts, and back."""

from __future__ import annotations

import jsonschema_rs
import pytest

from tasktable.api.schemas import SCHEMAS
from tasktable.api.validation import (
    BadRequest,
    SchemaViolation,
    Validator,
    nesting_depth,
    parse_json_body,
    parse_timestamp,
)

SPACES = [chr(c) for c in range(0x110000) if chr(c).isspace()]
TRICKY = [
    "a",
    "abc\n",  # Python's $ matches before a trailing newline, ECMA's does not
    "\nabc",
    "a\u0000b",
    "\u001e",  # found by Schemathesis: whitespace to Python, not to ECMA's \s
    "x\u001e",
    *SPACES,
    *(f"{s}x{s}" for s in SPACES),
    "myapp.tasks:Export",
    "myapp.tasks.Export",
    "myapp:Export\n",
    "q-1.b:c_d",
    "' OR 1=1 --",
    "%",
    "\u00e9t\u00e9",
    "\U0001f600",
]


@pytest.mark.parametrize("name", ["TaskName", "Queue", "HandlerPath"])
def test_strings_agree_with_the_document(name: str) -> None:
    schema = {**SCHEMAS[name], "components": {"schemas": SCHEMAS}}
    validator = Validator(SCHEMAS)
    for text in TRICKY:
        documented = jsonschema_rs.is_valid(schema, text)
        try:
            validator.check(text, {"$ref": name}, "value")
            checked = True
        except SchemaViolation:
            checked = False
        assert checked == documented, (name, repr(text))


def test_task_names_are_what_core_accepts() -> None:
    validator = Validator(SCHEMAS)
    for text in TRICKY:
        try:
            validator.check(text, {"$ref": "TaskName"}, "name")
        except SchemaViolation:
            continue
        assert text.strip() and "\x00" not in text, repr(text)


def test_timestamps() -> None:
    assert parse_timestamp("2026-01-31T14:00:00Z").isoformat() == "2026-01-31T14:00:00+00:00"
    assert parse_timestamp("2026-01-31t14:00:00.5+02:00").isoformat() == (
        "2026-01-31T12:00:00.500000+00:00"
    )
    assert parse_timestamp("2016-12-31T23:59:60Z").second == 59  # a leap second
    assert parse_timestamp("0001-01-01T00:00:00+01:00").year == 1970  # clamped, no overflow
    assert parse_timestamp("9999-12-31T23:59:59-05:00").year == 9999
    for bad in ("2026-02-30T00:00:00Z", "2026-01-31", "2026-01-31T14:00:00", "yesterday"):
        with pytest.raises(ValueError):
            parse_timestamp(bad)


def test_json_bodies() -> None:
    assert parse_json_body(b'{"a": [1, 2.5, "x"]}') == {"a": [1, 2.5, "x"]}
    assert nesting_depth('{"a": "[[[[", "b": [[]]}') == 3  # brackets in strings do not count
    for bad in (b"", b" ", b"{", b"[NaN]", b"[1e400]", b'{"a":1,"a":2}', b"\xff", b'"\\udc00"'):
        with pytest.raises(BadRequest):
            parse_json_body(bad)
