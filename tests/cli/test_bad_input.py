"""Issue 2, "Bad input gets a clear error and changes nothing", on every database.

Each bad input must give exactly one sentence on stderr starting ``Error:``, a
non-zero exit code, no traceback, and leave every row as it was (the snapshot
of all tasktable tables before equals the one after).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tasktable import TaskTable
from tests.support.cli import ECHO, snapshot

from .conftest import Cli

H = "tests.support.handlers"

# (argv, extra environment, words the error must contain). "{id}" is an existing task,
# "{done}" a finished one.
CASES = {
    "args-invalid-json": (["enqueue", ECHO, "--args", '{"order_ids": [1, 2'], {}, "not valid JSON"),
    "args-not-json-at-all": (["enqueue", ECHO, "--args", "order_ids=1"], {}, "not valid JSON"),
    "args-a-number": (["enqueue", ECHO, "--args", "42"], {}, "object or array"),
    "args-a-string": (["enqueue", ECHO, "--args", '"text"'], {}, "object or array"),
    "args-null": (["enqueue", ECHO, "--args", "null"], {}, "not null"),
    "args-string-of-json": (["enqueue", ECHO, "--args", '"[1, 2]"'], {}, "not str"),
    "args-nan": (["enqueue", ECHO, "--args", '{"x": NaN}'], {}, "NaN"),
    "args-over-limit": (
        ["enqueue", ECHO, "--args", '{"blob": "' + "x" * 200 + '"}'],
        {"TASKTABLE_MAX_ARGS_BYTES": "100"},
        "TASKTABLE_MAX_ARGS_BYTES",
    ),
    "handler-module-missing": (["enqueue", "tests.support.nowhere:Gone"], {}, "cannot be imported"),
    "handler-attribute-missing": (["enqueue", f"{H}:Gone"], {}, "has no 'Gone'"),
    "handler-not-a-path": (["enqueue", "not a path"], {}, "not an import path"),
    "handler-plain-function": (["enqueue", f"{H}:not_a_handler"], {}, "is not a handler"),
    "handler-plain-class": (["enqueue", f"{H}:NotAHandler"], {}, "is not a handler"),
    "handler-plain-class-dotted": (["enqueue", f"{H}.NotAHandler"], {}, "is not a handler"),
    "handler-outside-allowlist": (
        ["enqueue", "tests.support.canary:Canary"],
        {"TASKTABLE_HANDLERS": f"{H}:*"},
        "TASKTABLE_HANDLERS",
    ),
    "show-unknown-id": (["show", "999999"], {}, "No task with id 999999"),
    "show-id-not-a-number": (["show", "abc"], {}, "not a number"),
    "retry-unknown-id": (["retry", "999999"], {}, "No task with id 999999"),
    "retry-known-and-unknown-ids": (["retry", "{done}", "999999"], {}, "nothing was retried"),
    "cancel-unknown-id": (["cancel", "999999"], {}, "No task with id 999999"),
    "cancel-known-and-unknown-ids": (["cancel", "{id}", "999998", "999999"], {}, "999998, 999999"),
    "delete-unknown-id": (["delete", "999999"], {}, "No task with id 999999"),
    "delete-known-and-unknown-ids": (["delete", "{id}", "999999"], {}, "nothing was deleted"),
    "list-unknown-status": (["list", "--status", "bogus"], {}, "Unknown status 'bogus'"),
    "clean-unknown-status": (["clean", "--status", "finished"], {}, "Unknown status"),
    "clean-pending": (["clean", "--status", "pending"], {}, "Cannot clean pending"),
    "clean-running": (["clean", "--status", "running", "--older-than", "0s"], {}, "running"),
    "clean-bad-duration": (["clean", "--older-than", "30x"], {}, "Bad duration '30x'"),
    "clean-bad-retention-env": (["clean"], {"TASKTABLE_RETENTION": "30x"}, "TASKTABLE_RETENTION"),
    "enqueue-bad-delay": (["enqueue", ECHO, "--delay", "30x"], {}, "Bad duration '30x'"),
    "enqueue-bad-timeout": (["enqueue", ECHO, "--timeout", "30x"], {}, "Bad duration '30x'"),
    "enqueue-bad-run-at": (["enqueue", ECHO, "--run-at", "tomorrow"], {}, "ISO 8601"),
    "enqueue-delay-and-run-at": (
        ["enqueue", ECHO, "--delay", "1m", "--run-at", "2030-01-01T00:00:00Z"],
        {},
        "not both",
    ),
    "enqueue-priority-out-of-range": (["enqueue", ECHO, "--priority", "1000"], {}, "out of range"),
    "enqueue-bad-queue": (["enqueue", ECHO, "--queue", "no spaces"], {}, "is not valid"),
    "enqueue-bad-max-attempts": (["enqueue", ECHO, "--max-attempts", "0"], {}, "at least 1"),
    "worker-bad-grace": (["worker", "--burst", "--grace", "30x"], {}, "Bad duration '30x'"),
    "worker-bad-queue": (["worker", "--burst", "--queue", "a b"], {}, "is not valid"),
    "crontab-bad-queue": (["crontab", "--queue", "a b"], {}, "is not valid"),
    "crontab-bad-weight": (["crontab", "--queue", "mail=x"], {}, "must be a whole number"),
}


@pytest.fixture
def existing(table: TaskTable) -> dict[str, str]:
    """A pending task and a finished one, so "changed nothing" has rows to watch."""
    pending = table.enqueue(ECHO, {"order_ids": [1, 2]})
    done = table.enqueue(ECHO, [3])
    claimed = table.storage.claim("test-worker", (), 1)  # the older one: pending's id
    assert [t.id for t in claimed] == [pending.id]
    table.storage.finish(claimed[0], _success())
    return {"id": str(done.id), "done": str(pending.id)}


def _success() -> object:
    from tasktable.core.status import TaskStatus
    from tasktable.storage.base import Outcome

    return Outcome(status=TaskStatus.SUCCESS, messages=())


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_sentence_and_changes_nothing(
    case: str,
    cli: Cli,
    url: str,
    existing: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    argv, env, expected = CASES[case]
    marker = tmp_path / "canary-imported"
    monkeypatch.setenv("TASKTABLE_CANARY_MARKER", str(marker))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    args = [existing[a[1:-1]] if a in ("{id}", "{done}") else a for a in argv]
    before = snapshot(url)

    result = cli("--db", url, *args)

    line = result.error_line()
    assert expected in line
    assert result.out == ""
    assert snapshot(url) == before
    assert not marker.exists(), "a handler outside TASKTABLE_HANDLERS was imported"


@pytest.mark.parametrize("flag", ["-v", "--verbose", "env"])
def test_verbose_adds_the_traceback(
    flag: str, cli: Cli, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["enqueue", ECHO, "--args", "42", "--db", sqlite_url]
    if flag == "env":
        monkeypatch.setenv("TASKTABLE_VERBOSE", "1")
    else:
        argv.insert(1, flag)  # after the command name: -v is accepted there too

    result = cli(*argv)

    assert result.code == 1
    assert "Traceback" in result.err
    assert result.err.strip().splitlines()[-1].startswith("Error: Args must be")


def test_unparsable_url(cli: Cli) -> None:
    line = cli("--db", "not a url", "list").error_line()
    assert "Cannot parse database URL 'not a url'" in line


def test_unparsable_url_hides_the_password(cli: Cli) -> None:
    line = cli("list", "--db", "postgresql://app:s3cret@db:notaport/app").error_line()
    assert "Cannot parse database URL" in line
    assert "s3cret" not in line


def test_unsupported_database(cli: Cli) -> None:
    assert "Unsupported database 'oracle'" in cli("--db", "oracle://x@h/db", "list").error_line()


@pytest.mark.parametrize(
    "unreachable",
    ["postgresql://postgres:pw@127.0.0.1:1/tasktable", "mysql://root:pw@127.0.0.1:1/tasktable"],
    ids=["postgresql", "mariadb"],
)
@pytest.mark.parametrize(
    "argv", [["list"], ["migrate"], ["enqueue", ECHO], ["worker", "--burst"], ["stats"]]
)
def test_unreachable_database(cli: Cli, unreachable: str, argv: list[str]) -> None:
    line = cli("--db", unreachable, *argv).error_line()
    assert "127.0.0.1:1" in line
    assert "pw" not in line.replace("127.0.0.1:1", "")  # the password stays hidden


@pytest.fixture(params=["postgresql", "mariadb"])
def empty_server_url(request: pytest.FixtureRequest) -> str:
    """A server database with no tasktable schema."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.mark.parametrize(
    "argv",
    [
        ["list"],
        ["show", "1"],
        ["enqueue", ECHO],
        ["retry", "1"],
        ["clean"],
        ["stats"],
        ["worker", "--burst"],
    ],
)
def test_missing_schema_on_a_server(cli: Cli, empty_server_url: str, argv: list[str]) -> None:
    before = snapshot(empty_server_url)
    line = cli(*argv, "--db", empty_server_url).error_line()
    assert "has no tasktable schema" in line
    assert "tasktable migrate" in line
    assert snapshot(empty_server_url) == before == {}


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["worker", "--burst", "--prefetch", "-1"], {}),
        (["worker", "--burst", "--prefetch", "many"], {}),
        (["worker", "--burst"], {"TASKTABLE_PREFETCH": "-5"}),
    ],
)
def test_a_bad_prefetch_is_a_usage_error_before_any_work(
    argv: list[str], env: dict[str, str], cli: Cli, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Click's own check of the option's range: its usage message, exit 2, nothing run."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    before = snapshot(url)
    result = cli("--db", url, *argv)
    assert result.code == 2
    assert "Error: Invalid value for '--prefetch'" in result.err
    assert "Traceback" not in result.err and result.out == ""
    assert snapshot(url) == before
