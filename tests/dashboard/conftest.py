"""Fixtures of the dashboard tests: a real ``tasktable serve`` subprocess per test (SQLite
and PostgreSQL), users of each role, worker subprocesses, and headless Chromium driven
by Playwright (Debian's /usr/bin/chromium; Playwright never downloads a browser).
"""

from __future__ import annotations

import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tasktable import TaskTable
from tasktable.auth import Identity
from tasktable.settings import Settings

from ..conftest import ROOT

SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CLI = [sys.executable, "-c", "from tasktable.cli.main import run; run()"]
H = "tests.dashboard.handlers"


@dataclass
class Server:
    """A ``tasktable serve`` subprocess, the database it serves and its users."""

    base: str
    db_url: str
    table: TaskTable
    env: dict[str, str]
    cwd: Path
    backend: str
    passwords: dict[str, str] = field(default_factory=dict)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def run_burst(self, queue: str, timeout: float = 60) -> None:
        """Run every due task of ``queue`` with a burst worker subprocess."""
        subprocess.run(
            [*CLI, "--db", self.db_url, "worker", "--burst", "--slots", "2", "--queue", queue],
            cwd=self.cwd,
            env=self.env,
            check=True,
            timeout=timeout,
            capture_output=True,
        )

    def start_worker(self, queue: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [*CLI, "--db", self.db_url, "worker", "--slots", "2", "--queue", queue],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.procs.append(proc)
        return proc


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def wait_until_up(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"tasktable serve exited: {log.read_text()}")
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"tasktable serve did not answer within 30 s: {log.read_text()}")


@pytest.fixture(params=["sqlite", "postgresql"])
def web_backend(request: pytest.FixtureRequest) -> tuple[str, str]:
    url: str = request.getfixturevalue(f"{request.param}_url")
    return request.param, url


@pytest.fixture
def served(
    web_backend: tuple[str, str],
    subprocess_env: dict[str, str],
    tmp_path: Path,
    settings: Settings,
) -> Iterator[Server]:
    """A migrated database with an operator and a viewer, served by ``tasktable serve``."""
    backend, url = web_backend
    table = TaskTable(url, settings=settings)
    table.migrate()
    identity = Identity(table)
    passwords = {"olivia": secrets.token_urlsafe(12), "victor": secrets.token_urlsafe(12)}
    identity.add_user("olivia", "operator", passwords["olivia"])
    identity.add_user("victor", "viewer", passwords["victor"])
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*CLI, "--db", url, "serve", "--port", str(port), "--log-level", "warning"],
            cwd=tmp_path,
            env=subprocess_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(
        base=f"http://127.0.0.1:{port}",
        db_url=url,
        table=table,
        env=subprocess_env,
        cwd=tmp_path,
        backend=backend,
        passwords=passwords,
        procs=[proc],
    )
    try:
        wait_until_up(server.base, proc, log)
        yield server
    finally:
        for p in reversed(server.procs):
            stop(p)
        table.close()


@dataclass
class Dialogs:
    """Every dialog a page opened: confirms are accepted, anything else is a failure."""

    seen: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, dialog: Any) -> None:
        self.seen.append((dialog.type, dialog.message))
        if dialog.type == "confirm":
            dialog.accept()
        else:
            dialog.dismiss()

    @property
    def alerts(self) -> list[tuple[str, str]]:
        return [d for d in self.seen if d[0] != "confirm"]


@pytest.fixture
def dialogs() -> Dialogs:
    return Dialogs()


@pytest.fixture
def page(browser: Any, dialogs: Dialogs) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    tab.on("dialog", dialogs)
    try:
        yield tab
    finally:
        context.close()
    assert dialogs.alerts == [], f"a page opened a dialog: {dialogs.alerts}"


def login(page: Any, server: Server, name: str) -> None:
    page.goto(f"{server.base}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", server.passwords[name])
    with page.expect_navigation():
        page.click("form button[type=submit]")
    if page.locator("[data-testid=logout]").count() == 0:
        raise AssertionError(f"login as {name} failed at {page.url}: {page.inner_text('main')}")


def screenshot(page: Any, server: Server, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}-{server.backend}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
