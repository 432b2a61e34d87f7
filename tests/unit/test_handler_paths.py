"""Handler paths and the TASKTABLE_HANDLERS allowlist: pure string work, nothing imported."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from tasktable.core.handlers import (
    MAX_HANDLER_LENGTH,
    Allowlist,
    normalize_handler_path,
    split_handler_path,
)
from tasktable.errors import HandlerError, HandlerNotAllowed


@pytest.mark.parametrize(
    ("path", "normal"),
    [
        ("myapp.tasks:SetMassDelivered", "myapp.tasks:SetMassDelivered"),
        ("myapp.tasks.SetMassDelivered", "myapp.tasks:SetMassDelivered"),
        ("tasks:Run", "tasks:Run"),
        ("tasks.Run", "tasks:Run"),
        ("a.b.c:Outer.Inner", "a.b.c:Outer.Inner"),
        ("  myapp.tasks:Job  ", "myapp.tasks:Job"),
        ("_private._mod:_Name2", "_private._mod:_Name2"),
    ],
)
def test_both_spellings_normalize_to_the_colon_form(path: str, normal: str) -> None:
    assert normalize_handler_path(path) == normal


def test_split() -> None:
    assert split_handler_path("a.b.C") == ("a.b", "C")
    assert split_handler_path("a.b:C.D") == ("a.b", "C.D")


@pytest.mark.parametrize(
    "path",
    [
        "",
        "   ",
        "Job",
        "myapp.tasks:",
        ":Job",
        "myapp..tasks:Job",
        "1app.tasks:Job",
        "myapp.tasks:Job()",
        "myapp/tasks.py:Job",
        "myapp.tasks:Job; rm -rf /",
        "os.system('x')",
        "myapp.tasks::Job",
        "a:b:c",
        None,
        42,
    ],
)
def test_paths_that_are_not_import_paths_are_refused(path: Any) -> None:
    with pytest.raises(HandlerError):
        normalize_handler_path(path)


def test_length_limit() -> None:
    module = "m" * (MAX_HANDLER_LENGTH - 2)
    assert normalize_handler_path(f"{module}:J") == f"{module}:J"
    with pytest.raises(HandlerError, match="longer"):
        normalize_handler_path(f"{module}x:J")


def test_unset_allowlist_allows_every_valid_path() -> None:
    allow = Allowlist.parse(None)
    assert not allow.is_set
    assert allow.allows("anything.at:All")
    assert allow.check("anything.at.All") == "anything.at:All"


@pytest.mark.parametrize("value", ["", " ", ",", " , ,"])
def test_empty_allowlist_allows_nothing(value: str) -> None:
    allow = Allowlist.parse(value)
    assert allow.is_set
    assert not allow.allows("myapp.tasks:Job")
    with pytest.raises(HandlerNotAllowed, match="TASKTABLE_HANDLERS"):
        allow.check("myapp.tasks:Job")


@pytest.mark.parametrize("pattern", ["myapp.tasks:*", "myapp.tasks.*"])
@pytest.mark.parametrize("path", ["myapp.tasks:Job", "myapp.tasks.Job"])
def test_a_pattern_in_either_form_matches_a_path_in_either_form(pattern: str, path: str) -> None:
    assert Allowlist.parse(pattern).allows(path)
    assert Allowlist.parse(pattern).check(path) == "myapp.tasks:Job"


@pytest.mark.parametrize(
    "path",
    [
        "myapp.other:Job",
        "myapp.tasks_evil:Job",
        "myapp:tasks",
        "evil.myapp.tasks:Job",
        "MYAPP.tasks:Job",
    ],
)
def test_patterns_do_not_match_neighbours(path: str) -> None:
    allow = Allowlist.parse("myapp.tasks:*, myapp.tasks.*")
    assert not allow.allows(path)
    with pytest.raises(HandlerNotAllowed, match="not allowed"):
        allow.check(path)


def test_several_patterns_trimmed() -> None:
    allow = Allowlist.parse(" myapp.tasks:* , reports.jobs:Export ,")
    assert allow.patterns == ("myapp.tasks:*", "reports.jobs:Export")
    assert allow.allows("reports.jobs.Export")
    assert not allow.allows("reports.jobs:Import")


def test_an_exact_pattern_allows_only_that_handler() -> None:
    allow = Allowlist.parse("myapp.tasks:Job")
    assert allow.allows("myapp.tasks.Job")
    assert not allow.allows("myapp.tasks:Job2")


def test_invalid_paths_are_never_allowed_even_by_a_catch_all() -> None:
    allow = Allowlist.parse("*")
    assert not allow.allows("not a path")
    with pytest.raises(HandlerError):
        allow.check("not a path")


def test_checking_imports_nothing() -> None:
    name = "tasktable_never_imported_module"
    Allowlist.parse("x.*").allows(f"{name}:Job")
    Allowlist.parse(None).check(f"{name}:Job")
    with pytest.raises(HandlerNotAllowed):
        Allowlist.parse("x.*").check(f"{name}:Job")
    assert name not in sys.modules


def test_refusal_names_the_path_and_the_patterns() -> None:
    with pytest.raises(HandlerNotAllowed) as caught:
        Allowlist.parse("a.b:*").check("c.d.E")
    assert "'c.d:E'" in str(caught.value)
    assert "a.b:*" in str(caught.value)
