"""The grid's URL: filters, search, sort and paging read from (and written to) a query string."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode

from ..core.status import TaskStatus
from ..ops import TaskQuery

#: Columns the grid sorts by (the operations layer's allowlist, in the grid's order).
SORTABLE = ("id", "name", "handler", "status", "queue", "priority", "created_at", "run_at")
PAGE_SIZES = (25, 50, 100, 200)
MAX_TEXT = 200
FILTER_KEYS = ("status", "name", "handler", "queue", "q", "created_from", "created_to")


def _text(value: str | None) -> str:
    return (value or "").strip()[:MAX_TEXT]


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@dataclass(frozen=True, kw_only=True)
class GridQuery:
    """What the grid shows: every field as the user typed it (after trimming)."""

    statuses: tuple[str, ...] = ()
    name: str = ""
    handler: str = ""
    queue: str = ""
    q: str = ""
    created_from: str = ""
    created_to: str = ""
    sort: str = "-id"
    cursor: str = ""
    limit: int = 50
    page: int = 1
    problems: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def parse(cls, get: Iterable[tuple[str, str]], default_limit: int = 50) -> GridQuery:
        values: dict[str, list[str]] = {}
        for key, value in get:
            values.setdefault(key, []).append(value)

        def one(key: str) -> str:
            return _text(values.get(key, [""])[0])

        problems: list[str] = []
        statuses: list[str] = []
        for raw in values.get("status", []):
            for part in raw.split(","):
                s = part.strip().lower()
                if s in TaskStatus._value2member_map_ and s not in statuses:
                    statuses.append(s)
                elif s:
                    problems.append(f"Unknown status {s[:30]!r} ignored.")
        sort = one("sort") or "-id"
        if sort.lstrip("-") not in SORTABLE:
            problems.append(f"Cannot sort by {sort[:30]!r}; sorted by id.")
            sort = "-id"
        try:
            limit = int(one("limit") or default_limit)
        except ValueError:
            limit = default_limit
        if limit not in PAGE_SIZES:
            limit = min(PAGE_SIZES, key=lambda size: abs(size - limit))
        try:
            page = max(1, min(1_000_000, int(one("page") or 1)))
        except ValueError:
            page = 1
        created_from, created_to = one("created_from"), one("created_to")
        for label, value in (("From", created_from), ("To", created_to)):
            if value and _day(value) is None:
                problems.append(f"{label} date {value[:30]!r} is not a date like 2024-05-31.")
        return cls(
            statuses=tuple(statuses),
            name=one("name"),
            handler=one("handler"),
            queue=one("queue"),
            q=one("q"),
            created_from=created_from if _day(created_from) else "",
            created_to=created_to if _day(created_to) else "",
            sort=sort,
            cursor=one("cursor") if len(values.get("cursor", [""])[0]) <= 500 else "",
            limit=limit,
            page=page if one("cursor") else 1,
            problems=tuple(problems),
        )

    # -- for the operations layer ----------------------------------------------------
    def task_query(self) -> TaskQuery:
        start = _day(self.created_from)
        end = _day(self.created_to)
        return TaskQuery(
            statuses=self.statuses,
            name=self.name or None,
            handler=self.handler or None,
            queues=tuple(q.strip() for q in self.queue.split(",") if q.strip()),
            created_after=datetime.combine(start, time(), UTC) if start else None,
            created_before=datetime.combine(end + timedelta(days=1), time(), UTC) if end else None,
            search=self.q or None,
        )

    @property
    def is_filtered(self) -> bool:
        return any(
            (self.statuses, self.name, self.handler, self.queue, self.q, self.created_from)
        ) or bool(self.created_to)

    # -- URLs ----------------------------------------------------------------------------
    def params(self, *, paging: bool = False) -> list[tuple[str, str]]:
        """The query string pairs of this view (the page position only with ``paging``)."""
        pairs: list[tuple[str, str]] = [("status", s) for s in self.statuses]
        for key in ("name", "handler", "queue", "q", "created_from", "created_to"):
            value = getattr(self, key)
            if value:
                pairs.append((key, value))
        if self.sort != "-id":
            pairs.append(("sort", self.sort))
        if self.limit != 50:
            pairs.append(("limit", str(self.limit)))
        if paging and self.cursor:
            pairs += [("cursor", self.cursor), ("page", str(self.page))]
        return pairs

    def url(self, root: str, **changes: object) -> str:
        """The grid's URL with ``changes`` applied; any change but paging goes to page 1."""
        paging = "cursor" in changes
        if not paging:
            changes.setdefault("cursor", "")
        view = replace(self, **changes)  # type: ignore[arg-type]
        query = urlencode(view.params(paging=paging))
        return f"{root}/" + (f"?{query}" if query else "")

    def with_status(self, root: str, status: str | None) -> str:
        return self.url(root, statuses=(status,) if status else ())

    def sorted_by(self, root: str, column: str) -> str:
        """Sorting by a column; the current column again flips the direction."""
        current = self.sort.lstrip("-")
        descending = self.sort.startswith("-")
        if column == current:
            sort = column if descending else f"-{column}"
        else:
            sort = f"-{column}" if column in ("id", "created_at", "run_at", "priority") else column
        return self.url(root, sort=sort)

    def sort_state(self, column: str) -> str:
        """'ascending', 'descending' or 'none' (for aria-sort)."""
        if self.sort.lstrip("-") != column:
            return "none"
        return "descending" if self.sort.startswith("-") else "ascending"
