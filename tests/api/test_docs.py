"""docs/api.md runs: its handler file is written, a real server starts, and every
``$`` line of its ``<!-- test: run -->`` console blocks runs in one shell, in order,
against that server (curl with --fail-with-body, so an error answer fails)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tasktable import TaskTable

from .conftest import ROOT, launch, seed_identity, server_environment

DOC = ROOT / "docs" / "api.md"
_BLOCK = re.compile(
    r"^<!-- test: (?P<kind>run|file)(?: (?P<path>\S+))? -->\n```(?P<lang>\w+)\n(?P<code>.*?)^```$",
    re.M | re.S,
)


def _commands(code: str) -> list[str]:
    return [line[2:] for line in code.splitlines() if line.startswith("$ ")]


def test_every_example_of_the_api_page_runs(tmp_path: Path) -> None:
    blocks = list(_BLOCK.finditer(DOC.read_text(encoding="utf-8")))
    assert blocks, "docs/api.md has no tested examples"
    commands: list[str] = []
    for block in blocks:
        if block["kind"] == "file":
            target = tmp_path / block["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block["code"])
            (target.parent / "__init__.py").touch()
        else:
            assert block["lang"] == "console"
            commands += _commands(block["code"])
    curls = [c for c in commands if c.startswith("curl ")]
    assert len(curls) >= 15

    db_url = f"sqlite:///{tmp_path}/docs.sqlite3"
    env = server_environment(tmp_path / "canary-imported")
    env["TASKTABLE_HANDLERS"] = "myapp.tasks:*"
    server = launch(db_url, env, tmp_path, seed_identity(db_url), handlers="myapp.tasks:*")
    try:
        script = ["set -euo pipefail"]
        for command in commands:
            script += [f"echo {shlex.quote('$ ' + command)}", command, "echo"]
        shell_env = {
            **env,
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
            "TASKTABLE_URL": server.base,
            "TASKTABLE_DATABASE_URL": db_url,
        }
        result = subprocess.run(
            ["bash", "-c", "\n".join(script)],
            cwd=tmp_path,
            env=shell_env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
        (tmp_path / "transcript.txt").write_text(result.stdout)
    finally:
        server.stop()
    assert (tmp_path / "orders.csv").read_text() == "id,status\n1,shipped\n2,shipped\n3,shipped"
    document = json.loads((tmp_path / "openapi.json").read_text())
    assert document["paths"]["/api/v1/tasks"]["post"]["operationId"] == "createTask"
    with TaskTable(db_url) as table:
        assert table.get(1).status.value == "success"
        assert [t.id for t in table.list().tasks] == [1]  # task 2 was deleted
