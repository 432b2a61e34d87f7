"""Checks on everything a caller gives: args, names, queues, priorities.

Each check raises :class:`~tasktable.errors.InvalidInput` with one sentence
naming the problem; nothing here touches a database.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from datetime import UTC, datetime
from typing import Any

from ..errors import InvalidInput
from .task import MESSAGE_LEVELS, JSONValue

MAX_NAME_LENGTH = 255
MAX_QUEUE_LENGTH = 100
MAX_UNIQUE_KEY_LENGTH = 255
MAX_JSON_DEPTH = 64
PRIORITY_MIN, PRIORITY_MAX = -100, 100
MAX_ATTEMPTS_LIMIT = 1000
_QUEUE = re.compile(r"^[A-Za-z0-9_.:\-]+$")


def _reject_constant(name: str) -> float:
    raise InvalidInput(f"Args may not contain {name}; JSON has no such number.")


def parse_json_args(text: str) -> JSONValue:
    """Parse args given as JSON text (from the CLI or an HTTP body)."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"Args are not valid JSON: {exc.msg} at position {exc.pos}.") from None
    except RecursionError:
        raise InvalidInput(f"Args are nested deeper than {MAX_JSON_DEPTH} levels.") from None
    except ValueError as exc:  # e.g. an integer past Python's 4300-digit limit
        raise InvalidInput(f"Args are not valid JSON: {exc}.") from None


def _depth_and_finite(value: Any, depth: int = 1) -> int:
    # Depth counts objects and arrays only: a scalar inside the deepest array is fine.
    if depth > MAX_JSON_DEPTH and isinstance(value, dict | list | tuple):
        raise InvalidInput(f"Args are nested deeper than {MAX_JSON_DEPTH} levels.")
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise InvalidInput("Args object keys must be strings.")
        return max([_depth_and_finite(v, depth + 1) for v in value.values()] or [depth])
    if isinstance(value, list | tuple):
        return max([_depth_and_finite(v, depth + 1) for v in value] or [depth])
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput("Args may not contain NaN or Infinity.")
    if value is None or isinstance(value, str | int | float | bool):
        return depth
    raise InvalidInput(f"Args must be JSON: a {type(value).__name__} cannot be stored.")


_SCALARS = frozenset({str, int, float, bool, type(None)})
_CONTAINERS = frozenset({dict, list, tuple})
_STR_ONLY = frozenset({str})
#: json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False) without
#: building an encoder at every call.
_dump = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def _refuse(value: Any) -> Any:
    raise TypeError(f"a {type(value).__name__} cannot be stored")


def _dump_plain_of() -> Any:
    """``_dump`` of what :func:`_plain` accepted, as json's C encoder itself: without
    ``JSONEncoder.encode``'s set-up at every call (half the time of a small object),
    nor its check for cycles (an accepted value is at most ``MAX_JSON_DEPTH`` deep)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    quote = getattr(json.encoder, "c_encode_basestring", None)
    if make is None or quote is None:  # no C speed-ups in this Python
        return _dump
    encoder = make(None, _refuse, quote, None, ":", ",", False, False, False)
    join = "".join

    def dump(value: Any) -> str:
        text: str = join(encoder(value, 0))
        return text

    return dump


_dump_plain = _dump_plain_of()
_load = json.JSONDecoder().decode


def _plain(value: Any, depth: int = 1) -> bool:
    """True when ``value`` (an object or array at ``depth``) holds only objects with
    ``str`` keys, arrays and plain scalars, nested at most ``MAX_JSON_DEPTH`` deep: what
    ``_depth_and_finite`` accepts, checked a container at a time (one set of the types
    in each); a float may still be NaN or infinite, which the encoder refuses. False:
    ``_depth_and_finite`` says what is wrong, if anything."""
    if depth > MAX_JSON_DEPTH:
        return False
    kind = type(value)
    if kind is dict:
        if not set(map(type, value)) <= _STR_ONLY:
            return False
        values: Any = value.values()
    elif kind is list or kind is tuple:
        values = value
    else:  # a subclass: the full walk
        return False
    kinds = set(map(type, values))
    if kinds <= _SCALARS:
        return True
    if not kinds <= _SCALARS | _CONTAINERS:
        return False
    return all(_plain(v, depth + 1) for v in values if type(v) in _CONTAINERS)


def dump_json(value: JSONValue) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError as exc:  # e.g. an integer past Python's 4300-digit limit
        raise InvalidInput(f"Args cannot be stored as JSON: {exc}.") from None


def validate_args(args: JSONValue, limit_bytes: int, *, copy: bool = True) -> tuple[JSONValue, str]:
    """Return ``(args, json_text)``; args must be a JSON object or array within the limit.

    The args returned are read back from the text (a copy, as stored), unless
    ``copy`` is false: then they are the args given (parsed, if given as text) and
    only the text stands for them."""
    if args is None:
        args = {}
    if isinstance(args, bytes):
        try:
            args = args.decode()
        except UnicodeDecodeError:
            raise InvalidInput("Args are not UTF-8 text.") from None
    if isinstance(args, str):
        args = parse_json_args(args)
    if isinstance(args, tuple):
        args = list(args)
    if not isinstance(args, dict | list):
        raise InvalidInput(
            f"Args must be a JSON object or array, not {type(args).__name__}; "
            'write them like {"order_ids": [1, 2]} or [1, 2].'
        )
    if not args:  # no arguments: nothing to walk, encode or measure
        return ({}, "{}") if isinstance(args, dict) else ([], "[]")
    text = None
    if _plain(args):
        with contextlib.suppress(ValueError):  # NaN, infinite, an integer past the limit
            text = _dump_plain(args)
    if text is None:  # something to refuse, probably: said as the full walk says it
        _depth_and_finite(args)
        text = dump_json(args)
    if text.isascii():
        size = len(text)
    else:
        try:
            size = len(text.encode())
        except UnicodeEncodeError:
            raise InvalidInput(
                "Args contain a lone surrogate character, which is not valid Unicode text."
            ) from None
    if size > limit_bytes:
        raise InvalidInput(
            f"Args are {size} bytes, more than the limit of {limit_bytes} bytes "
            "(TASKTABLE_MAX_ARGS_BYTES)."
        )
    return (_load(text) if copy else args), text


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("A task name cannot be empty.")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"A task name is at most {MAX_NAME_LENGTH} characters.")
    check_no_nul(name, "A task name")
    return name


def validate_queue(queue: str) -> str:
    if not isinstance(queue, str) or not queue:
        raise InvalidInput("A queue name cannot be empty.")
    if len(queue) > MAX_QUEUE_LENGTH or not _QUEUE.fullmatch(queue):
        raise InvalidInput(
            f"Queue {queue!r} is not valid; use up to {MAX_QUEUE_LENGTH} letters, digits, "
            "'_', '-', '.' or ':'."
        )
    return queue


def validate_priority(priority: int) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise InvalidInput(f"Priority must be an integer, not {priority!r}.")
    if not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise InvalidInput(
            f"Priority {priority} is out of range; use {PRIORITY_MIN} to {PRIORITY_MAX} "
            "(higher runs first)."
        )
    return priority


def validate_max_attempts(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(f"max_attempts must be a whole number of at least 1, not {value!r}.")
    if value > MAX_ATTEMPTS_LIMIT:
        raise InvalidInput(f"max_attempts is at most {MAX_ATTEMPTS_LIMIT}.")
    return value


def validate_timeout(value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InvalidInput(f"A timeout must be a positive number of seconds, not {value!r}.")
    if not math.isfinite(value):
        raise InvalidInput("A timeout must be finite.")
    return float(value)


def validate_unique_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_UNIQUE_KEY_LENGTH:
        raise InvalidInput(f"A unique key is 1 to {MAX_UNIQUE_KEY_LENGTH} characters.")
    check_no_nul(value, "A unique key")
    return value


def check_no_nul(text: str, what: str) -> str:
    """PostgreSQL text cannot hold a NUL character; refuse it on every database alike."""
    if "\x00" in text:
        raise InvalidInput(f"{what} cannot contain a NUL character.")
    return text


def validate_level(level: str) -> str:
    if level not in MESSAGE_LEVELS:
        raise InvalidInput(
            f"Unknown message level {level!r}; use one of {', '.join(MESSAGE_LEVELS)}."
        )
    return level


def parse_datetime(value: str | datetime) -> datetime:
    """An ISO 8601 time; a time without an offset is taken as UTC."""
    if isinstance(value, datetime):
        parsed = value
    elif not isinstance(value, str):
        raise InvalidInput(f"Bad time {value!r}; write it as ISO 8601, e.g. 2026-01-31T14:00:00Z.")
    else:
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidInput(
                f"Bad time {value!r}; write it as ISO 8601, e.g. 2026-01-31T14:00:00Z."
            ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
