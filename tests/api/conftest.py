"""A real ``tasktable serve`` process per test, on each database, with a token per role."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select

from tasktable import TaskTable
from tasktable.auth import Identity, Role
from tasktable.storage.schema import file_table, task_table

ALLOWED = "tests.support.handlers:*"
CLI = [sys.executable, "-c", "from tasktable.cli.main import run; run()"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def table_checksum(db_url: str) -> str:
    """A digest of every task and file row: equal before and after = nothing changed."""
    engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            tasks = conn.execute(select(task_table).order_by(task_table.c.id)).all()
            files = conn.execute(select(file_table).order_by(file_table.c.id)).all()
    finally:
        engine.dispose()
    return hashlib.sha256(repr((tasks, files)).encode()).hexdigest()


@dataclass
class Server:
    base: str
    db_url: str
    tokens: dict[str, str]
    process: subprocess.Popen[bytes]
    log: Path
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def api(self) -> str:
        return f"{self.base}/api/v1"

    def client(self, role: str | None = "admin", **headers: str) -> httpx.Client:
        if role is not None:
            headers.setdefault("Authorization", f"Bearer {self.tokens[role]}")
        client = httpx.Client(base_url=self.api, headers=headers, timeout=30)
        self.clients.append(client)
        return client

    def checksum(self) -> str:
        return table_checksum(self.db_url)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def seed_identity(db_url: str) -> dict[str, str]:
    """Migrate the database and create one token per role; returns role -> secret."""
    with TaskTable(db_url) as table:
        table.migrate()
        identity = Identity(table)
        return {role.value: identity.create_token(f"{role.value}-token", role)[1] for role in Role}


def launch(
    db_url: str,
    env: dict[str, str],
    workdir: Path,
    tokens: dict[str, str],
    handlers: str | None = ALLOWED,
) -> Server:
    env = dict(env)
    env.pop("TASKTABLE_HANDLERS", None)
    if handlers is not None:
        env["TASKTABLE_HANDLERS"] = handlers
    port = free_port()
    log = workdir / f"serve-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*CLI, "serve", "--db", db_url, "--port", str(port), "--log-level", "warning"],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(
        base=f"http://127.0.0.1:{port}", db_url=db_url, tokens=tokens, process=process, log=log
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"tasktable serve exited early:\n{server.output()}")
        try:
            if httpx.get(f"{server.api}/health", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.stop()
    raise AssertionError(f"tasktable serve did not answer in 30 s:\n{server.output()}")


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """The file tests.support.canary writes when (and only when) it is imported."""
    return tmp_path / "canary-imported"


@pytest.fixture
def server_env(subprocess_env: dict[str, str], marker: Path) -> dict[str, str]:
    return {**subprocess_env, "TASKTABLE_CANARY_MARKER": str(marker)}


@pytest.fixture
def start_server(
    db_url: str, server_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., Server]]:
    """Start ``tasktable serve`` on this test's fresh database (migrated, with tokens)."""
    started: list[Server] = []
    tokens: dict[str, str] = {}

    def start(handlers: str | None = ALLOWED) -> Server:
        if not tokens:
            tokens.update(seed_identity(db_url))
        server = launch(db_url, server_env, tmp_path, tokens, handlers)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def server(start_server: Callable[..., Server]) -> Server:
    """A server whose TASKTABLE_HANDLERS allows tests.support.handlers:* only."""
    return start_server()


@pytest.fixture
def sample(server: Server) -> dict[str, Any]:
    """A few tasks in known states, made through the Python API."""
    with TaskTable(server.db_url) as table:
        pending = table.enqueue("tests.support.handlers:Echo", {"n": 1}, name="pending one")
        errored = table.enqueue("tests.support.handlers:Echo", {"n": 2}, name="errored one")
        table.cancel(errored.id)  # cancelled: retryable
        done = table.enqueue("tests.support.handlers:Echo", {"n": 3}, name="done one")
    return {"pending": pending.id, "cancelled": errored.id, "other": done.id}

