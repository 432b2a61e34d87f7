"""Parse human durations such as ``30d``, ``10s``, ``1h30m``, ``250ms``."""

from __future__ import annotations

import math
import re
from datetime import timedelta

from ..errors import InvalidInput

_UNITS = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}
MAX_SECONDS = 100 * 365 * 86400.0
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(text: str | float | int | timedelta) -> timedelta:
    """Return the duration ``text`` names; a bare number means seconds.

    >>> parse_duration("1h30m")
    datetime.timedelta(seconds=5400)
    """
    if isinstance(text, timedelta):
        return text
    if isinstance(text, int | float):
        if text < 0:
            raise InvalidInput(f"A duration cannot be negative: {text}.")
        return _timedelta(float(text), text)
    raw = text.strip().lower().replace(" ", "")
    if not raw:
        raise InvalidInput("Empty duration; write it like 30s, 10m, 2h or 30d.")
    try:
        seconds = float(raw)
    except ValueError:
        pos, seconds = 0, 0.0
        for match in _PART.finditer(raw):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if pos != len(raw):
            raise InvalidInput(
                f"Bad duration {text!r}; write it like 30s, 10m, 2h, 30d or 1h30m."
            ) from None
    if seconds < 0:
        raise InvalidInput(f"A duration cannot be negative: {text!r}.")
    return _timedelta(seconds, text)


def _timedelta(seconds: float, text: object) -> timedelta:
    """``float("nan")``, ``"inf"`` and ``"1e30"`` parse as floats; refuse them here."""
    if not math.isfinite(seconds) or seconds > MAX_SECONDS:
        raise InvalidInput(f"Bad duration {text!r}; it must be finite and under 100 years.")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta | float) -> str:
    """A short human form: ``2d 3h``, ``4m 10s``, ``850ms``."""
    seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
    if round(seconds * 1000) < 1000:
        return f"{round(seconds * 1000)}ms"
    seconds = round(seconds)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            count = int(seconds // size)
            seconds -= count * size
            parts.append(f"{count}{unit}")
        if len(parts) == 2:
            break
    return " ".join(parts)
