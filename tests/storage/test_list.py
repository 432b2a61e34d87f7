"""List, count, filters, sorting and keyset paging."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from tasktable import TaskTable
from tasktable.core.status import TaskStatus
from tasktable.core.task import Task
from tasktable.errors import InvalidInput

from .helpers import BOOM, ECHO, make_status, shift

TRICKY_NAMES = [
    "100% done",
    "100 percent done",
    "under_score",
    "underXscore",
    "it's quoted",
    'say "hi"',
    "' OR 1=1 --",
    "back\\slash",
    "slash/path",
    "[bracket]",
    "Caps Name",
]


def names(page_tasks: list[Task]) -> set[str]:
    return {t.name for t in page_tasks}


NAME_CASES: list[tuple[str, set[str]]] = [
    ("%", {"100% done"}),
    ("100%", {"100% done"}),
    ("_", {"under_score"}),
    ("r_s", {"under_score"}),
    ("'", {"it's quoted", "' OR 1=1 --"}),
    ('"hi"', {'say "hi"'}),
    ("' OR 1=1 --", {"' OR 1=1 --"}),
    ("\\", {"back\\slash"}),
    ("/", {"slash/path"}),
    ("[bracket]", {"[bracket]"}),
    ("caps name", {"Caps Name"}),
    ("CAPS", {"Caps Name"}),
    ("done", {"100% done", "100 percent done"}),
    ("nothing like it", set()),
]


def test_name_filter_is_a_literal_case_insensitive_substring(table: TaskTable) -> None:
    for name in TRICKY_NAMES:
        table.enqueue(ECHO, name=name)
    for needle, expected in NAME_CASES:
        assert names(table.list(name=needle).tasks) == expected, needle
        assert table.count(name=needle) == len(expected), needle


def test_status_filter(table: TaskTable) -> None:
    made = {s: make_status(table, s).id for s in TaskStatus}
    for status, task_id in made.items():
        assert [t.id for t in table.list(status=status).tasks] == [task_id]
        assert [t.id for t in table.list(status=status.value.upper()).tasks] == [task_id]
    both = table.list(status=["error", "cancelled"]).tasks
    assert {t.id for t in both} == {made[TaskStatus.ERROR], made[TaskStatus.CANCELLED]}
    with pytest.raises(InvalidInput, match="Unknown status"):
        table.list(status="done")


def test_handler_filter_accepts_either_spelling(table: TaskTable) -> None:
    echo = table.enqueue(ECHO).id
    boom = table.enqueue(BOOM).id
    assert [t.id for t in table.list(handler=ECHO).tasks] == [echo]
    assert [t.id for t in table.list(handler="tests.support.handlers.Boom").tasks] == [boom]
    assert table.list(handler="tests.support.handlers:Ech").tasks == []


def test_queue_filter(table: TaskTable) -> None:
    a = table.enqueue(ECHO, queue="emails").id
    b = table.enqueue(ECHO, queue="reports").id
    table.enqueue(ECHO)
    assert [t.id for t in table.list(queue="emails").tasks] == [a]
    assert {t.id for t in table.list(queue=["emails", "reports"]).tasks} == {a, b}
    assert table.list(queue="nope").tasks == []


def test_created_range(table: TaskTable) -> None:
    old = table.enqueue(ECHO, name="old").id
    mid = table.enqueue(ECHO, name="mid").id
    new = table.enqueue(ECHO, name="new").id
    shift(table, old, created_at=3 * 86400)
    shift(table, mid, created_at=86400)
    now = table.storage.server_now()
    after = (now - timedelta(days=2)).isoformat()
    before = (now - timedelta(hours=12)).isoformat()
    assert [t.id for t in table.list(created_after=after).tasks] == [new, mid]
    assert [t.id for t in table.list(created_before=before).tasks] == [mid, old]
    assert [t.id for t in table.list(created_after=after, created_before=before).tasks] == [mid]
    with pytest.raises(InvalidInput, match="ISO 8601"):
        table.list(created_after="last week")


def test_search_looks_in_name_handler_and_args(table: TaskTable) -> None:
    by_name = table.enqueue(ECHO, name="Nightly export").id
    by_args = table.enqueue(ECHO, {"customer": "ACME-77"}).id
    by_handler = table.enqueue(BOOM).id
    assert [t.id for t in table.list(search="nightly").tasks] == [by_name]
    assert [t.id for t in table.list(search="acme-77").tasks] == [by_args]
    assert [t.id for t in table.list(search="Boom").tasks] == [by_handler]
    assert table.list(search="%").tasks == []


def test_filters_combine(table: TaskTable) -> None:
    hit = table.enqueue(ECHO, name="report A", queue="q1").id
    table.enqueue(ECHO, name="report B", queue="q2")
    table.enqueue(BOOM, name="report C", queue="q1")
    assert [t.id for t in table.list(name="report", queue="q1", handler=ECHO).tasks] == [hit]
    assert table.count(name="report", queue="q1", handler=ECHO) == 1


def test_count(table: TaskTable) -> None:
    assert table.count() == 0
    for _ in range(3):
        table.enqueue(ECHO)
    make_status(table, TaskStatus.CANCELLED)
    assert table.count() == 4
    assert table.count(status="pending") == 3
    assert table.count(status="cancelled") == 1


def test_unknown_sort_fields_are_refused(table: TaskTable) -> None:
    table.enqueue(ECHO)
    for bad in ["args", "-messages", "claim_token", "id desc", "nope"]:
        with pytest.raises(InvalidInput, match="sort by one of"):
            table.list(sort=bad)


def test_limit_bounds(table: TaskTable) -> None:
    for bad in [0, -1, 1001]:
        with pytest.raises(InvalidInput, match="limit"):
            table.list(limit=bad)


def test_default_is_newest_first(table: TaskTable) -> None:
    ids = [table.enqueue(ECHO).id for _ in range(3)]
    page = table.list()
    assert [t.id for t in page.tasks] == ids[::-1]
    assert page.next_cursor is None


def test_bad_cursor_is_invalid_input(table: TaskTable) -> None:
    for _ in range(3):
        table.enqueue(ECHO)
    cursor = table.list(limit=1).next_cursor
    assert cursor is not None
    for bad in ["garbage", cursor[:-2], cursor + "xx"]:
        with pytest.raises(InvalidInput, match="cursor"):
            table.list(limit=1, cursor=bad)
    with pytest.raises(InvalidInput, match="cursor"):
        table.list(limit=1, cursor=cursor, sort="priority")


def walk(table: TaskTable, sort: str, limit: int, **filters: Any) -> list[list[int]]:
    """Every page of a listing, following the cursors."""
    pages: list[list[int]] = []
    cursor: str | None = None
    while True:
        page = table.list(sort=sort, limit=limit, cursor=cursor, **filters)
        pages.append([t.id for t in page.tasks])
        cursor = page.next_cursor
        if cursor is None:
            return pages
        assert len(pages) < 100, "paging does not end"


def expected_order(table: TaskTable, key: Callable[[Task], Any], descending: bool) -> list[int]:
    everything = table.list(limit=1000).tasks
    ordered = sorted(everything, key=lambda t: (key(t), t.id), reverse=descending)
    return [t.id for t in ordered]


@pytest.fixture
def tied(table: TaskTable) -> TaskTable:
    """23 tasks with many ties in every sortable field."""
    items = [
        {
            "handler": ECHO if n % 2 else BOOM,
            "args": {"n": n},
            "name": f"name-{n % 4}",
            "priority": n % 3,
            "queue": f"q{n % 2}",
        }
        for n in range(23)
    ]
    tasks = table.enqueue_many(items)
    ids = [t.id for t in tasks]
    # ties in created_at and run_at as well: five groups sharing one instant each
    for group in range(5):
        shift(table, ids[group::5], created_at=100 * group + 10, run_at=50 * group + 5)
    for task_id in ids[:4]:
        table.cancel(task_id)
    return table


SORTS: list[tuple[str, Callable[[Task], Any]]] = [
    ("id", lambda t: t.id),
    ("priority", lambda t: t.priority),
    ("name", lambda t: t.name),
    ("created_at", lambda t: t.created_at),
    ("run_at", lambda t: t.run_at),
    ("status", lambda t: t.status.value),
    ("queue", lambda t: t.queue),
    ("handler", lambda t: t.handler),
]


@pytest.mark.parametrize(("field", "key"), SORTS, ids=[s[0] for s in SORTS])
def test_keyset_paging_with_ties_has_no_duplicates_and_no_gaps(
    tied: TaskTable, field: str, key: Callable[[Task], Any]
) -> None:
    for descending in (True, False):
        expected = expected_order(tied, key, descending)
        for limit in (1, 4):
            case = f"sort={'-' if descending else ''}{field} limit={limit}"
            pages = walk(tied, f"-{field}" if descending else field, limit)
            flat = [i for page in pages for i in page]
            assert len(flat) == len(set(flat)) == 23, case
            assert flat == expected, case
            assert all(len(page) == limit for page in pages[:-1]), case
            assert 1 <= len(pages[-1]) <= limit, case


def test_paging_with_a_filter(tied: TaskTable) -> None:
    pages = walk(tied, "-priority", 3, queue="q1", status="pending")
    flat = [i for page in pages for i in page]
    expected = [
        t.id
        for t in sorted(
            tied.list(queue="q1", status="pending", limit=1000).tasks,
            key=lambda t: (t.priority, t.id),
            reverse=True,
        )
    ]
    assert flat == expected and len(flat) == tied.count(queue="q1", status="pending")


def test_a_page_boundary_on_the_last_task_gives_no_empty_page(table: TaskTable) -> None:
    for _ in range(4):
        table.enqueue(ECHO)
    pages = walk(table, "id", 2)
    assert [len(p) for p in pages] == [2, 2]


def test_tasks_added_while_paging_do_not_shift_pages(table: TaskTable) -> None:
    first = [table.enqueue(ECHO).id for _ in range(6)]
    page = table.list(sort="-id", limit=3)
    table.enqueue(ECHO)  # newer than everything: it belongs before page one
    rest = table.list(sort="-id", limit=3, cursor=page.next_cursor)
    assert [t.id for t in page.tasks] + [t.id for t in rest.tasks] == first[::-1]


def test_name_filter_ignores_case_beyond_ascii(table: TaskTable) -> None:
    wanted = table.enqueue(ECHO, name="Relatório de MARÇO").id
    table.enqueue(ECHO, name="Relatorio de marco")
    for needle in ["relatório de março", "RELATÓRIO", "Março", "ÓRIO DE"]:
        assert [t.id for t in table.list(name=needle).tasks] == [wanted], needle
        assert [t.id for t in table.list(search=needle).tasks] == [wanted], needle


def test_filters_with_a_nul_character_are_invalid_input(table: TaskTable) -> None:
    table.enqueue(ECHO)
    for filters in ({"name": "a\x00"}, {"search": "\x00"}, {"queue": "q\x00"}):
        with pytest.raises(InvalidInput, match="NUL"):
            table.list(**filters)
        with pytest.raises(InvalidInput, match="NUL"):
            table.count(**filters)
