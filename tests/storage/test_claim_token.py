"""Claim tokens: unique per claim, in every process (a fork draws a new prefix)."""

from __future__ import annotations

import os
import re

import pytest

from tasktable.storage import worker_side
from tasktable.storage.worker_side import claim_token


def test_tokens_fit_the_column_and_never_repeat() -> None:
    tokens = [claim_token() for _ in range(10_000)]
    assert len(set(tokens)) == len(tokens)
    assert all(re.fullmatch(r"[0-9a-f]{32}", t) for t in tokens)


def test_a_forked_process_draws_its_own_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    before = claim_token()
    child_pid = os.getpid() + 1
    monkeypatch.setattr(worker_side.os, "getpid", lambda: child_pid)  # as after a fork
    after = claim_token()
    assert after[:16] != before[:16]
    assert claim_token()[:16] == after[:16]
