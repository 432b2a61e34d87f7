"""Request checks: safe JSON parsing and a small JSON Schema validator.

The validator understands the subset of JSON Schema (OpenAPI 3.0 flavour) that
``openapi.py`` uses, so the published document and the checks the server makes
are one and the same data: a request the document calls invalid is refused,
and one it calls valid passes these checks.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from ..errors import InvalidInput

#: Objects and arrays nested deeper than this are refused before parsing
#: (the args limit, 64, plus the body object and one level of margin).
MAX_BODY_DEPTH = 66

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_BRACKETS = re.compile(r"[\[\]{}]")
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)
_INTEGER = re.compile(r"^[+-]?\d{1,20}$")
MIN_TIME = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(9999, 12, 31, tzinfo=UTC)


class BadRequest(InvalidInput):
    """The body is not acceptable JSON at all (HTTP 400)."""

    code = "bad_request"


class SchemaViolation(InvalidInput):
    """The JSON does not have the documented shape (HTTP 422)."""

    code = "invalid_input"


# -- parsing ---------------------------------------------------------------------
def _no_constant(name: str) -> Any:
    raise BadRequest(f"The body contains {name}, which is not JSON; send finite numbers only.")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise BadRequest(f"The number {text[:40]} is too large for a JSON number.")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise BadRequest(f"The key {key[:100]!r} appears twice in one JSON object.")
        result[key] = value
    return result


def nesting_depth(text: str) -> int:
    """How deep arrays and objects nest in JSON text, without parsing it."""
    depth = deepest = 0
    for match in _BRACKETS.finditer(_STRING.sub('""', text)):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def parse_json_body(raw: bytes) -> Any:
    """Parse a request body: UTF-8 JSON, no NaN/Infinity, no duplicate keys, bounded
    nesting, no unpaired surrogates. Raises :class:`BadRequest`."""
    if not raw.strip():
        raise BadRequest("The request body is empty; send a JSON object.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("The request body is not UTF-8 text.") from None
    if nesting_depth(text) > MAX_BODY_DEPTH:
        raise BadRequest(f"The body nests arrays or objects deeper than {MAX_BODY_DEPTH} levels.")
    try:
        value = json.loads(
            text,
            parse_constant=_no_constant,
            parse_float=_finite_float,
            object_pairs_hook=_unique_keys,
        )
    except json.JSONDecodeError as exc:
        raise BadRequest(f"The body is not valid JSON: {exc.msg} at position {exc.pos}.") from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer of 5,000 digits
        raise BadRequest(f"The body is not acceptable JSON: {str(exc)[:120]}.") from None
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(
            "The body contains an unpaired UTF-16 surrogate (\\ud800-\\udfff)."
        ) from None
    return value


def parse_timestamp(text: str) -> datetime:
    """An RFC 3339 time as an aware UTC datetime, clamped to 1970-01-01 .. 9999-12-31
    (a leap second counts as :59)."""
    match = _RFC3339.match(text)
    if not match:
        raise ValueError("not an RFC 3339 date-time")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction = match.group(7) or ""
    micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
    zone = match.group(8)
    if zone in ("Z", "z"):
        offset = timedelta(0)
    else:
        sign = -1 if zone[0] == "-" else 1
        offset = sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        if abs(offset) >= timedelta(hours=24):
            raise ValueError("offset out of range")
    local = datetime(year, month, day, hour, minute, min(second, 59), micro)
    try:
        value = local.replace(tzinfo=timezone(offset)).astimezone(UTC)
    except OverflowError:
        return MIN_TIME if year < 5000 else MAX_TIME
    return min(max(value, MIN_TIME), MAX_TIME)


# -- the validator --------------------------------------------------------------------
@functools.lru_cache(maxsize=64)
def ecma_pattern(pattern: str) -> re.Pattern[str]:
    """A schema pattern as JSON Schema (ECMA 262) reads it: a final ``$`` is the end of
    the text, where Python's would also match before a trailing newline."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


class Validator:
    """Validate (and lightly convert) values against schemas with ``$ref``s into
    ``components``: date-time strings become datetimes, integral floats ints."""

    def __init__(self, components: Mapping[str, Any]) -> None:
        self.components = components

    def resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        while "$ref" in schema:
            name = str(schema["$ref"]).rsplit("/", 1)[-1]
            schema = self.components[name]
        return schema

    def check(self, value: Any, schema: Mapping[str, Any], where: str) -> Any:
        schema = self.resolve(schema)
        if value is None:
            if schema.get("nullable"):
                return None
            if "type" in schema or "anyOf" not in schema:
                raise SchemaViolation(f"{where} cannot be null.")
        if "anyOf" in schema:
            return self._any_of(value, schema, where)
        if "not" in schema:
            self._not(value, schema["not"], where)
        kind = schema.get("type")
        if kind is not None:
            value = self._type(value, kind, where)
        if "enum" in schema and value not in schema["enum"]:
            allowed = ", ".join(str(v) for v in schema["enum"])
            raise SchemaViolation(f"{where} must be one of: {allowed}.")
        if isinstance(value, str):
            return self._string(value, schema, where)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return self._number(value, schema, where)
        if isinstance(value, list):
            return self._array(value, schema, where)
        if isinstance(value, dict):
            return self._object(value, schema, where)
        return value

    def _any_of(self, value: Any, schema: Mapping[str, Any], where: str) -> Any:
        reasons: list[tuple[Mapping[str, Any], str]] = []
        for option in schema["anyOf"]:
            try:
                return self.check(value, option, where)
            except SchemaViolation as exc:
                reasons.append((self.resolve(option), str(exc)))
        if isinstance(value, dict):  # report the option that names every given field
            for option, reason in reasons:
                if set(value) <= set(option.get("properties", {})):
                    raise SchemaViolation(reason)
        if "x-message" in schema:
            raise SchemaViolation(str(schema["x-message"]))
        raise SchemaViolation(reasons[0][1])

    def _not(self, value: Any, schema: Mapping[str, Any], where: str) -> None:
        try:
            self.check(value, schema, where)
        except SchemaViolation:
            return
        raise SchemaViolation(
            str(self.resolve(schema).get("x-message", f"{where} is not allowed."))
        )

    def _type(self, value: Any, kind: str, where: str) -> Any:
        if kind == "integer":
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                raise SchemaViolation(f"{where} must be a whole number.")
        elif kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise SchemaViolation(f"{where} must be a number.")
        elif kind == "string":
            if not isinstance(value, str):
                raise SchemaViolation(f"{where} must be a string.")
        elif kind == "boolean":
            if not isinstance(value, bool):
                raise SchemaViolation(f"{where} must be true or false.")
        elif kind == "array":
            if not isinstance(value, list):
                raise SchemaViolation(f"{where} must be an array.")
        elif kind == "object" and not isinstance(value, dict):
            raise SchemaViolation(f"{where} must be an object.")
        return value

    def _string(self, value: str, schema: Mapping[str, Any], where: str) -> Any:
        if len(value) < schema.get("minLength", 0):
            raise SchemaViolation(f"{where} must have at least {schema['minLength']} characters.")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise SchemaViolation(f"{where} must have at most {schema['maxLength']} characters.")
        if "pattern" in schema and not ecma_pattern(schema["pattern"]).search(value):
            hint = schema.get("x-message") or f"does not match {schema['pattern']}"
            raise SchemaViolation(f"{where} {hint}.")
        if schema.get("format") == "date-time":
            try:
                return parse_timestamp(value)
            except ValueError:
                raise SchemaViolation(
                    f"{where} must be an RFC 3339 time such as 2026-01-31T14:00:00Z."
                ) from None
        return value

    def _number(self, value: float, schema: Mapping[str, Any], where: str) -> Any:
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and (value < low or (schema.get("exclusiveMinimum") and value == low)):
            word = "more than" if schema.get("exclusiveMinimum") else "at least"
            raise SchemaViolation(f"{where} must be {word} {low}.")
        if high is not None and value > high:
            raise SchemaViolation(f"{where} must be at most {high}.")
        return value

    def _array(self, value: list[Any], schema: Mapping[str, Any], where: str) -> list[Any]:
        if len(value) < schema.get("minItems", 0):
            raise SchemaViolation(f"{where} needs at least {schema['minItems']} item(s).")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise SchemaViolation(f"{where} takes at most {schema['maxItems']} items.")
        items = schema.get("items")
        if items is None:
            return value
        return [self.check(v, items, f"{where}[{i}]") for i, v in enumerate(value)]

    def _object(self, value: dict[str, Any], schema: Mapping[str, Any], where: str) -> Any:
        properties: Mapping[str, Any] = schema.get("properties", {})
        if len(value) < schema.get("minProperties", 0):
            raise SchemaViolation(
                f"{where} needs at least one of: {', '.join(properties) or 'any field'}."
            )
        for name in schema.get("required", ()):
            if name not in value:
                raise SchemaViolation(f"{where} needs the field {name!r}.")
        if schema.get("additionalProperties") is False:
            unknown = sorted(set(value) - set(properties))
            if unknown:
                known = ", ".join(properties) or "none"
                raise SchemaViolation(
                    f"{where} has unknown field(s) {', '.join(map(repr, unknown))[:200]}; "
                    f"known fields: {known}."
                )
        if not properties:
            return value
        return {
            key: self.check(item, properties[key], f"{where}.{key}") if key in properties else item
            for key, item in value.items()
        }


def query_value(text: str, schema: Mapping[str, Any], where: str) -> Any:
    """Convert one query-string value to the type its schema names, before checking it."""
    kind = schema.get("type")
    if kind == "integer":
        if not _INTEGER.match(text):
            raise SchemaViolation(f"{where} must be a whole number.")
        return int(text)
    if kind == "number":
        try:
            number = float(text)
        except ValueError:
            raise SchemaViolation(f"{where} must be a number.") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise SchemaViolation(f"{where} must be a finite number.")
        return number
    return text
