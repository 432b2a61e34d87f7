"""Bulk enqueue: a batch whose tasks share their options (validated once, inserted with
the shared values bound once) behaves as any other batch, on every database."""

from __future__ import annotations

import dataclasses
import queue
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tasktable import TaskTable
from tasktable.core.task import NewTask, Task
from tasktable.errors import InvalidInput
from tasktable.storage import sql
from tasktable.storage.bulk import builder, uniform
from tasktable.storage.schema import task_table

from .helpers import ECHO, row_count
from .test_wakeup import listening

T = task_table.c

#: Args whose JSON text must be stored and read back exactly.
ODD_ARGS: list[Any] = [
    {},
    [],
    {"n": 1},
    {"quote": 'say "hi"\\', "tab": "a\tb\nc\r", "nul": "\x00", "uni": "Zoë ✓ 𝄞"},
    [1.5, 1e-7, 12345678901234567890, True, None, {"deep": [[[]]]}],
    {"\u2028": "line separator", "ctl": "\x01\x1f"},
]


def test_the_builder_makes_what_the_constructor_makes() -> None:
    now = datetime.now(UTC)
    given = {
        "id": 7,
        "name": "n",
        "handler": ECHO,
        "args": {"a": 1},
        "status": "pending",
        "messages": (),
        "created_at": now,
        "executed_at": None,
        "finished_at": None,
        "action_link": None,
        "queue": "q",
        "priority": 3,
        "run_at": now,
        "attempts": 0,
        "max_attempts": 2,
        "timeout": 1.5,
        "progress": None,
        "error": None,
        "worker": None,
        "heartbeat_at": None,
        "unique_key": None,
    }
    built = builder(Task, list(given))(*given.values())
    assert type(built) is Task
    assert built == Task(**given)  # the fields not given take their defaults
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.name = "changed"  # type: ignore[misc]
    new = builder(NewTask, ["handler", "args", "name"])(ECHO, [1], "n")
    assert new == NewTask(handler=ECHO, args=[1], name="n")


def test_the_builder_calls_the_constructor_of_a_class_that_checks() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        value: int
        extra: list[int] = dataclasses.field(default_factory=list)

        def __post_init__(self) -> None:
            if self.value < 0:
                raise ValueError("negative")

    build = builder(Checked, ["value"])
    assert build(1) == Checked(1)
    with pytest.raises(ValueError, match="negative"):
        build(-1)

    @dataclasses.dataclass(frozen=True, slots=True)
    class Plain:
        value: int
        extra: list[int] = dataclasses.field(default_factory=list)

    first, second = builder(Plain, ["value"])(1), builder(Plain, ["value"])(1)
    assert first == Plain(1) and first.extra is not second.extra


def test_uniform_means_only_the_args_differ() -> None:
    base = NewTask(handler=ECHO, args={}, name="n")
    assert uniform([base, dataclasses.replace(base, args=[1])])
    for change in (
        {"name": "m"},
        {"queue": "q"},
        {"priority": 1},
        {"run_at": datetime.now(UTC)},
        {"max_attempts": 2},
        {"timeout": 1.0},
        {"rerun_on_loss": False},
        {"unique_key": "k"},
    ):
        assert not uniform([base, dataclasses.replace(base, **change)]), change
    assert not uniform([dataclasses.replace(base, unique_key="k")] * 2)


def test_a_uniform_batch_stores_each_args_text_exactly(table: TaskTable) -> None:
    items = [{"handler": ECHO, "args": args, "queue": "odd"} for args in ODD_ARGS * 3]
    tasks = table.enqueue_many(items)
    assert [t.args for t in tasks] == [table.get(t.id).args for t in tasks]
    assert [t.args for t in tasks] == ODD_ARGS * 3
    with table.storage.engine.connect() as conn:
        stored = dict(conn.execute(select(T.id, T.args)).all())
    fresh = table.enqueue_many([{"handler": ECHO, "args": args} for args in ODD_ARGS[3:5]])
    mixed = table.enqueue_many(  # the general statement, one row per task
        [{"handler": ECHO, "args": args, "priority": n} for n, args in enumerate(ODD_ARGS)]
    )
    with table.storage.engine.connect() as conn:
        texts = dict(conn.execute(select(T.id, T.args)).all())
    assert [stored[t.id] for t in tasks[3:5]] == [texts[t.id] for t in fresh]
    assert [stored[t.id] for t in tasks[: len(ODD_ARGS)]] == [texts[t.id] for t in mixed]


def test_a_uniform_batch_keeps_order_options_and_equals_get(table: TaskTable) -> None:
    later = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    options = {
        "handler": ECHO,
        "name": "bulk",
        "queue": "q.1",
        "priority": -3,
        "run_at": later,
        "max_attempts": 4,
        "timeout": 0.1,
        "rerun_on_loss": False,
    }
    tasks = table.enqueue_many([{**options, "args": {"n": n}} for n in range(300)])
    assert [t.args["n"] for t in tasks] == list(range(300))
    ids = [t.id for t in tasks]
    assert ids == sorted(ids) and len(set(ids)) == 300
    assert [table.get(i) for i in ids[::37]] == tasks[::37]
    first = tasks[0]
    assert (first.name, first.queue, first.priority, first.run_at) == ("bulk", "q.1", -3, later)
    assert (first.max_attempts, first.timeout, first.rerun_on_loss) == (4, 0.1, False)
    bare = table.enqueue_many([{"handler": ECHO}] * 5)
    assert [table.get(t.id) for t in bare] == bare
    assert all(t.run_at == t.created_at and t.args == {} for t in bare)
    assert len({id(t.args) for t in bare}) == 5, "each task has args of its own"


def test_items_with_the_same_options_are_each_checked(table: TaskTable) -> None:
    good = {"handler": ECHO, "queue": "same"}
    for bad, message in (
        ({**good, "args": 5}, "Item 3: Args must be a JSON object or array"),
        ({**good, "args": [float("inf")]}, "Item 3: Args may not contain NaN"),
        ({**good, "priority": True}, "Item 3: Priority must be an integer"),
        ({**good, "max_attempts": 1.0}, "Item 3: max_attempts must be a whole number"),
        ({**good, "timeout": True}, "Item 3: A timeout must be"),
    ):
        # the same options as the first three items, or nearly (True == 1 == 1.0)
        first = {**good, "priority": 1, "max_attempts": 1, "timeout": 1}
        items = [first, first, first, {**first, **bad}, first]
        with pytest.raises(InvalidInput, match=message):
            table.enqueue_many(items)
        assert row_count(table) == 0, bad


def test_a_delay_counts_from_each_item(table: TaskTable) -> None:
    before = datetime.now(UTC)
    tasks = table.enqueue_many([{"handler": ECHO, "delay": "1h"}] * 3)
    assert all(t.run_at >= before + timedelta(hours=1) for t in tasks)


def test_an_unverified_item_takes_the_defaults_once_its_handler_is_loaded(
    table: TaskTable,
) -> None:
    """As before items with the same options were validated once: an item with
    ``verify=False`` takes the handler's defaults when an earlier item loaded it."""
    plain = "tests.support.handlers:plain_function"
    unverified = {"handler": plain, "verify": False}
    tasks = table.enqueue_many([unverified, unverified, {"handler": plain}, unverified])
    assert [t.name for t in tasks] == ["plain_function"] * 2 + ["Plain function"] * 2


def test_a_uniform_batch_wakes_its_queue_only_when_due(table: TaskTable) -> None:
    if not table.storage.capabilities.listen_notify:
        pytest.skip("PostgreSQL only")
    with listening(table) as heard:
        table.enqueue_many([{"handler": ECHO, "queue": "later", "delay": "1h"}] * 20)
        table.enqueue_many([{"handler": ECHO, "queue": "past", "run_at": "2020-01-01"}] * 20)
        assert heard.get(timeout=10) == "past"
        with pytest.raises(queue.Empty):
            heard.get(timeout=0.5)


def test_chunks_cut_at_the_character_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sql, "_CHUNK_CHARS", 10)
    assert sql._chunks(["{}"] * 5) == [(0, 5)]
    assert sql._chunks(["{}"] * 6) == [(0, 5), (5, 6)]
    assert sql._chunks(["x" * 30, "{}", "y" * 9, "{}"]) == [(0, 1), (1, 2), (2, 3), (3, 4)]


def test_a_uniform_batch_over_several_statements_keeps_order(
    table: TaskTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite and MariaDB send a long batch in several statements, in one transaction."""
    monkeypatch.setattr(sql, "_CHUNK_CHARS", 100)
    tasks = table.enqueue_many([{"handler": ECHO, "args": {"n": n}} for n in range(60)])
    assert [t.args["n"] for t in tasks] == list(range(60))
    ids = [t.id for t in tasks]
    assert ids == sorted(ids) and len(set(ids)) == 60
    assert [table.get(i) for i in ids] == tasks
    with table.storage.engine.connect() as conn:
        table.enqueue_many(
            [{"handler": ECHO, "args": {"n": n}} for n in range(60)], connection=conn
        )
        conn.rollback()
    assert row_count(table) == 60


def test_returned_args_are_the_stored_ones_not_the_callers(table: TaskTable) -> None:
    given = [{"n": n, "tags": ["a"], "pair": (1, 2)} for n in range(3)]
    tasks = table.enqueue_many([{"handler": ECHO, "args": args} for args in given])
    for args in given:
        args["tags"].append("changed")  # type: ignore[attr-defined]
    assert [t.args for t in tasks] == [{"n": n, "tags": ["a"], "pair": [1, 2]} for n in range(3)]
    assert [table.get(t.id) for t in tasks] == tasks
