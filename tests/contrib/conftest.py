"""Shared by the framework tests: the docs' code written out as importable modules."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tempfile
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


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def serve(command: list[str], env: dict[str, str], url: str) -> subprocess.Popen[bytes]:
    """Start a web server process and wait until ``url`` answers (any HTTP status)."""
    import time
    import urllib.error
    import urllib.request

    # A file, not a pipe: a chatty server would fill a pipe and block. stop() closes it.
    log = tempfile.TemporaryFile()  # noqa: SIM115
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    proc.log = log  # type: ignore[attr-defined]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise AssertionError(f"{command} exited: {log.read().decode()}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return proc
        except urllib.error.HTTPError:
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"{command} did not answer at {url}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.log.close()  # type: ignore[attr-defined]


def http(method: str, url: str, data: bytes | None = None, **headers: str) -> tuple[int, bytes]:
    """One request, no redirects followed: (status, body)."""
    import urllib.error
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
