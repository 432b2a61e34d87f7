"""Cron expressions (five fields, UTC): parse one, and find its latest tick. Pure.

``minute hour day-of-month month day-of-week``, each ``*``, a number, a range
``a-b``, a step ``*/n`` or ``a-b/n``, or a comma-separated list of those;
months and weekdays also by name (``jan``, ``mon``); 0 and 7 are Sunday. As in
classic cron, when both day fields are restricted a day matches either.
Shortcuts: ``@hourly``, ``@daily`` (``@midnight``), ``@weekly``, ``@monthly``,
``@yearly`` (``@annually``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..errors import InvalidInput

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (  # name, low, high, names
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
_PART = re.compile(r"^(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(\d+))?$")
#: How far back :meth:`Cron.latest` looks (enough for "0 0 29 2 *": leap days).
_LOOKBACK_DAYS = 8 * 366


def _value(text: str, name: str, low: int, high: int, names: dict[str, int]) -> int:
    value = names.get(text)
    if value is None:
        if not text.isdigit():
            raise InvalidInput(f"Cron {name} {text!r} is not a number.")
        value = int(text)
    if not low <= value <= high:
        raise InvalidInput(f"Cron {name} {value} is outside {low}-{high}.")
    return value


def _field(text: str, name: str, low: int, high: int, names: dict[str, int]) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        match = _PART.match(part)
        if not match:
            raise InvalidInput(f"Cron {name} {part!r} is not valid; write e.g. *, 5, 1-5, */15.")
        span, step_text = match.groups()
        step = int(step_text) if step_text else 1
        if step < 1:
            raise InvalidInput(f"Cron {name} step must be at least 1.")
        if span == "*":
            first, last = low, high
        elif "-" in span:
            a, b = span.split("-")
            first, last = _value(a, name, low, high, names), _value(b, name, low, high, names)
            if first > last:
                raise InvalidInput(f"Cron {name} range {span!r} runs backwards.")
        else:
            first = _value(span, name, low, high, names)
            last = high if step_text else first
        values.update(range(first, last + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Cron:
    """A parsed cron expression; times are UTC, to the minute."""

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, expression: str) -> Cron:
        text = " ".join(str(expression).strip().lower().split())
        text = _MACROS.get(text, text)
        parts = text.split(" ")
        if len(parts) != 5:
            raise InvalidInput(
                f"Cron expression {expression!r} needs five fields "
                "(minute hour day-of-month month day-of-week), e.g. '*/15 * * * *'."
            )
        fields = [_field(p, *spec) for p, spec in zip(parts, _FIELDS, strict=True)]
        weekdays = frozenset(d % 7 for d in fields[4])
        return cls(
            expression=str(expression).strip(),
            minutes=fields[0],
            hours=fields[1],
            days=fields[2],
            months=fields[3],
            weekdays=weekdays,
            any_day=parts[2] == "*",
            any_weekday=parts[4] == "*",
        )

    def _day_matches(self, day: datetime) -> bool:
        if day.month not in self.months:
            return False
        in_month = day.day in self.days
        in_week = (day.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:  # only one of them restricts
            return in_month and in_week
        return in_month or in_week

    def matches(self, moment: datetime) -> bool:
        return (
            moment.minute in self.minutes
            and moment.hour in self.hours
            and self._day_matches(moment)
        )

    def latest(self, moment: datetime) -> datetime | None:
        """The latest tick at or before ``moment`` (UTC, seconds dropped); None if none
        in the last eight years (an expression such as ``0 0 30 2 *`` never ticks)."""
        moment = moment.astimezone(UTC).replace(second=0, microsecond=0)
        day = moment.replace(hour=0, minute=0)
        for back in range(_LOOKBACK_DAYS):
            current = day - timedelta(days=back)
            if not self._day_matches(current):
                continue
            last_minute = moment.hour * 60 + moment.minute if back == 0 else 24 * 60 - 1
            for hour in sorted(self.hours, reverse=True):
                if hour * 60 > last_minute:
                    continue
                for minute in sorted(self.minutes, reverse=True):
                    if hour * 60 + minute <= last_minute:
                        return current.replace(hour=hour, minute=minute)
        return None

    def next_after(self, moment: datetime) -> datetime | None:
        """The first tick strictly after ``moment`` (for display)."""
        start = moment.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = start.replace(hour=0, minute=0)
        for ahead in range(_LOOKBACK_DAYS):
            current = day + timedelta(days=ahead)
            if not self._day_matches(current):
                continue
            first_minute = start.hour * 60 + start.minute if ahead == 0 else 0
            for hour in sorted(self.hours):
                for minute in sorted(self.minutes):
                    if hour * 60 + minute >= first_minute:
                        return current.replace(hour=hour, minute=minute)
        return None
