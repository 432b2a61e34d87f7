"""Schemathesis (from PyPI) against the published OpenAPI document of a real server.

Every phase (examples, coverage, fuzzing, stateful), every check: no server
error, responses conform to the document (status, content type, headers,
schema), invalid input is rejected, valid input accepted (see st_hooks.py for
the one semantic exception). At least 100 examples per operation on SQLite and
a smaller pass on PostgreSQL; ``TASKTABLE_FULL=1`` (``make test-full``) runs
1,000 and 200. The seed is fixed so a failure replays; set TASKTABLE_ST_SEED to
explore others. Each failure found becomes a test in ``test_regressions.py``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasktable import TaskTable

from .conftest import (
    ECHO,
    ROOT,
    Server,
    attach,
    fresh_database,
    launch,
    seed_identity,
    server_environment,
)

FULL = os.environ.get("TASKTABLE_FULL") == "1"
SEED = int(os.environ.get("TASKTABLE_ST_SEED", "20261129"))
EXAMPLES = {"sqlite": 1000 if FULL else 100, "postgresql": 200 if FULL else 25}
ST = Path(sys.executable).with_name("st")


def _seed_tasks(db_url: str) -> None:
    """Tasks with small ids in every state, some with files: routes on ids hit real rows."""
    with TaskTable(db_url) as table:
        ids = [table.enqueue(ECHO, {"i": i}, name=f"seeded {i}").id for i in range(12)]
        table.cancel(*ids[:4])
    for task_id in ids[4:8]:
        attach(db_url, task_id, "0", b"zero")
        attach(db_url, task_id, "report.csv", b"a,b\n1,2\n")


@pytest.fixture(scope="module", params=sorted(EXAMPLES))
def st_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Server]]:
    folder = tmp_path_factory.mktemp(f"st-{request.param}")
    with fresh_database(request.param, folder) as url:
        tokens = seed_identity(url)
        _seed_tasks(url)
        server = launch(url, server_environment(folder / "canary-imported"), folder, tokens)
        try:
            yield request.param, server
        finally:
            server.stop()


@pytest.mark.timeout(3600 if FULL else 600)
def test_schemathesis_finds_nothing(st_server: tuple[str, Server], tmp_path: Path) -> None:
    backend, server = st_server
    examples = EXAMPLES[backend]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "SCHEMATHESIS_HOOKS": "tests.api.st_hooks",
    }
    command = [
        str(ST),
        "run",
        f"{server.api}/openapi.json",
        "--header",
        f"Authorization: Bearer {server.tokens['admin']}",
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",  # replaced by st_hooks.valid_data_accepted
        "--max-examples",
        str(examples),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--no-color",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path / "reports"),
    ]
    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=3500
    )
    output = result.stdout + result.stderr
    (tmp_path / "schemathesis.out").write_text(output)
    assert result.returncode == 0, output[-15000:]
    summary = re.search(r"(\d+) generated, (\d+) passed", output)
    assert summary, output[-3000:]
    generated, passed = int(summary.group(1)), int(summary.group(2))
    assert generated == passed
    assert generated >= 10 * examples, output[-3000:]  # every operation and phase ran
    assert "Traceback" not in server.output(), server.output()[-5000:]
    assert server.process.poll() is None
    print(f"schemathesis on {backend}: {generated} cases, seed {SEED}")
