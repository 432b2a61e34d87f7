"""Named queues: which a worker serves, in which order or with which weights."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from tasktable.errors import InvalidInput
from tasktable.worker.queues import QueuePlan

from .conftest import WORK, Cluster


def test_plain_queues_are_claimed_together() -> None:
    plan = QueuePlan.parse(["mail", "reports,exports"])
    assert plan.names == ("mail", "reports", "exports")
    assert plan.rounds() == [("mail", "reports", "exports")]
    assert QueuePlan.parse([]).rounds() == [()]  # every queue


def test_ordered_queues_are_claimed_in_turn() -> None:
    assert QueuePlan.parse(["high", "low"], ordered=True).rounds() == [("high",), ("low",)]


def test_weights_set_how_often_a_queue_comes_first(seed: int) -> None:
    plan = QueuePlan.parse(["mail=3", "reports=1"])
    rng = random.Random(seed)
    rounds = [plan.rounds(rng) for _ in range(4000)]
    assert all(sorted(r) == [("mail",), ("reports",)] for r in rounds)  # both, always
    first = Counter(r[0][0] for r in rounds)
    assert 0.71 <= first["mail"] / 4000 <= 0.79


@pytest.mark.parametrize(
    ("values", "ordered", "message"),
    [
        (["mail=0"], False, "from 1 to"),
        (["mail=x"], False, "whole number"),
        (["mail", "mail"], False, "twice"),
        (["mail=2", "reports=1"], True, "not both"),
        (["bad queue"], False, "queue"),
    ],
)
def test_bad_queue_options_say_why(values: list[str], ordered: bool, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        QueuePlan.parse(values, ordered=ordered)


@pytest.mark.reliability
@pytest.mark.timeout(120)
def test_an_ordered_worker_empties_the_first_queue_first(lite: Cluster) -> None:
    cluster = lite
    low = cluster.enqueue([{"handler": WORK, "args": {"ms": 1}, "queue": "low"}] * 5)
    high = cluster.enqueue([{"handler": WORK, "args": {"ms": 1}, "queue": "high"}] * 5)
    other = cluster.enqueue([{"handler": WORK, "args": {"ms": 1}, "queue": "elsewhere"}])
    worker = cluster.start(
        "--slots", "1", "--queue", "high", "--queue", "low", "--ordered", "--burst"
    )
    assert worker.wait(60) == 0
    tasks = cluster.table.list(status="success", limit=20).tasks
    done = [t.id for t in sorted(tasks, key=lambda t: (t.executed_at, t.id))]
    assert done == [*high, *low]
    assert cluster.table.get(other[0]).status.value == "pending"  # not a queue it serves
