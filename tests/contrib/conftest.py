"""Shared by the framework tests: the docs' code written out as importable modules."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.contrib.docs_code import write_files

TASKTABLE = str(Path(sys.executable).parent / "tasktable")


@pytest.fixture
def docs_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str], Path]]:
    """``docs_package("docs/flask.md")`` writes its file blocks under a fresh directory on
    ``sys.path``; the modules are forgotten afterwards."""
    root = tmp_path / "docs_code"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    before = set(sys.modules)

    def write(document: str) -> Path:
        write_files(document, root)
        importlib.invalidate_caches()
        return root

    yield write
    for name in set(sys.modules) - before:
        origin = getattr(sys.modules[name], "__file__", None) or ""
        if origin.startswith(str(root)):
            del sys.modules[name]


@pytest.fixture
def server_url(request: pytest.FixtureRequest) -> str:
    """SQLite or PostgreSQL (``parametrize("server_url", [...], indirect=True)``)."""
    value: str = request.getfixturevalue(f"{request.param}_url")
    return value


def burst_worker(url: str, env: dict[str, str], code_root: Path | None = None) -> str:
    """``tasktable --db URL worker --burst``; returns its stderr (it must exit 0)."""
    env = dict(env)
    if code_root is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(code_root), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [TASKTABLE, "--db", url, "worker", "--burst", "--slots", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr
