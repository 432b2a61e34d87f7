"""The status machine: every allowed move, and every forbidden one."""

from __future__ import annotations

import itertools

import pytest

from tasktable.core.status import (
    FINAL_STATUSES,
    RETRYABLE,
    TRANSITIONS,
    TaskStatus,
    can_move,
)
from tasktable.errors import InvalidInput

P, R, S, E, C = (
    TaskStatus.PENDING,
    TaskStatus.RUNNING,
    TaskStatus.SUCCESS,
    TaskStatus.ERROR,
    TaskStatus.CANCELLED,
)

#: PRODUCT.md: pending -> running -> success | error; pending -> cancelled;
#: running -> pending (release, rescue); error/cancelled -> pending (explicit retry).
#: Issue 3: running -> cancelled (a cancel request the handler honours, or the worker enforces).
ALLOWED = {(P, R), (R, S), (R, E), (P, C), (R, P), (E, P), (C, P), (R, C)}


def test_statuses_are_the_seeds_five() -> None:
    assert [s.value for s in TaskStatus] == ["pending", "running", "success", "error", "cancelled"]


@pytest.mark.parametrize(("src", "dst"), sorted(ALLOWED))
def test_allowed_moves(src: TaskStatus, dst: TaskStatus) -> None:
    assert can_move(src, dst)


@pytest.mark.parametrize(
    ("src", "dst"),
    sorted(set(itertools.product(TaskStatus, TaskStatus)) - ALLOWED),
)
def test_forbidden_moves(src: TaskStatus, dst: TaskStatus) -> None:
    assert not can_move(src, dst)


def test_the_table_names_every_status() -> None:
    assert set(TRANSITIONS) == set(TaskStatus)


def test_success_is_terminal() -> None:
    assert TRANSITIONS[S] == frozenset()


def test_final_and_retryable_sets() -> None:
    assert frozenset({S, E, C}) == FINAL_STATUSES
    assert frozenset({E, C}) == RETRYABLE
    assert [s.is_final for s in TaskStatus] == [False, False, True, True, True]
    assert all(can_move(s, P) for s in RETRYABLE)


@pytest.mark.parametrize(("text", "status"), [("pending", P), (" Error ", E), ("CANCELLED", C)])
def test_parse(text: str, status: TaskStatus) -> None:
    assert TaskStatus.parse(text) is status


@pytest.mark.parametrize("text", ["done", "", "failed", "pend"])
def test_parse_refuses_unknown_statuses_and_lists_the_known_ones(text: str) -> None:
    with pytest.raises(InvalidInput, match="pending, running, success, error, cancelled"):
        TaskStatus.parse(text)
