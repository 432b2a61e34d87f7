"""A real ``tasktable serve`` process per test, on each database, with a token per role."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
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
from sqlalchemy import Engine, create_engine, insert, make_url, select, text

from tasktable import TaskTable
from tasktable.auth import Identity, Role
from tasktable.storage.schema import file_table, task_table
from tasktable.storage.types import utcnow
from tests.conftest import BACKENDS, MYSQL_ADMIN_URL, PG_ADMIN_URL, ROOT, require_server

ALLOWED = "tests.support.handlers:*"
ECHO = "tests.support.handlers:Echo"
CLI = [sys.executable, "-c", "from tasktable.cli.main import run; run()"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def table_checksum(engine: Engine) -> str:
    """A digest of every task and file row: equal before and after = nothing changed."""
    with engine.connect() as conn:
        tasks = conn.execute(select(task_table).order_by(task_table.c.id)).all()
        files = conn.execute(select(file_table).order_by(file_table.c.id)).all()
    return hashlib.sha256(repr((tasks, files)).encode()).hexdigest()


@dataclass
class Server:
    base: str
    db_url: str
    tokens: dict[str, str]
    process: subprocess.Popen[bytes]
    log: Path
    clients: list[httpx.Client] = field(default_factory=list)
    _engine: Engine | None = None

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
        if self._engine is None:
            self._engine = create_engine(self.db_url, pool_size=1, pool_pre_ping=True)
        return table_checksum(self._engine)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        if self._engine is not None:
            self._engine.dispose()
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


def attach(db_url: str, task_id: int, filename: str, data: bytes) -> None:
    """Store a file for a task, as a handler's attach_file would."""
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(file_table).values(
                    task_id=task_id,
                    filename=filename,
                    content_type="application/octet-stream",
                    size=len(data),
                    content=data,
                    created_at=utcnow(),
                )
            )
    finally:
        engine.dispose()


def _admin_engine(url: str) -> Any:
    return create_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


@contextlib.contextmanager
def fresh_database(backend: str, folder: Path) -> Iterator[str]:
    """An empty database on ``backend`` (a file, or a new server database), dropped after."""
    if backend == "sqlite":
        yield f"sqlite:///{folder}/api.sqlite3"
        return
    require_server(backend)
    name = f"tt_api_{secrets.token_hex(5)}"
    admin_url = PG_ADMIN_URL if backend == "postgresql" else MYSQL_ADMIN_URL
    admin = _admin_engine(admin_url)
    quote = '"' if backend == "postgresql" else "`"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {quote}{name}{quote}"))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        force = " WITH (FORCE)" if backend == "postgresql" else ""
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {quote}{name}{quote}{force}"))
        admin.dispose()


def server_environment(marker: Path) -> dict[str, str]:
    """Like the ``subprocess_env`` fixture: no stray TASKTABLE_* settings, test handlers
    importable, and the canary's marker file named."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTABLE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["TASKTABLE_LOG_FILE"] = str(marker.parent / "log" / "background_task.log")
    env["PYTHONUNBUFFERED"] = "1"
    env["TASKTABLE_CANARY_MARKER"] = str(marker)
    return env


@pytest.fixture(scope="session", params=BACKENDS)
def shared_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One server per database for the suite: starting one takes seconds, so the tests
    share it and keep to their own tasks (their own queue, their own ids), comparing
    the table before and after themselves. Tests that need their own settings or an
    empty database use ``start_server``."""
    folder = tmp_path_factory.mktemp(f"api-{request.param}")
    with fresh_database(request.param, folder) as url:
        server = launch(
            url, server_environment(folder / "canary-imported"), folder, seed_identity(url)
        )
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def server(shared_server: Server) -> Iterator[Server]:
    """The shared server of this database, alive (one that died fails loudly here)."""
    assert shared_server.process.poll() is None, shared_server.output()
    yield shared_server
    for client in shared_server.clients:
        client.close()
    shared_server.clients.clear()


@pytest.fixture
def queue() -> str:
    """A queue name of this test alone: its tasks are told apart from other tests'."""
    return f"q-{secrets.token_hex(4)}"


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """The file tests.support.canary writes when (and only when) it is imported."""
    return tmp_path / "canary-imported"


@pytest.fixture
def server_env(marker: Path) -> dict[str, str]:
    return server_environment(marker)


@pytest.fixture
def start_server(
    db_url: str, server_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., Server]]:
    """Start ``tasktable serve`` on this test's own fresh database (migrated, with
    tokens), with the TASKTABLE_HANDLERS asked for."""
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
def sample(server: Server, queue: str) -> dict[str, int]:
    """Three tasks of this test's queue: one pending, one cancelled, one other pending."""
    with TaskTable(server.db_url) as table:
        pending = table.enqueue(ECHO, {"n": 1}, name="pending one", queue=queue)
        errored = table.enqueue(ECHO, {"n": 2}, name="errored one", queue=queue)
        table.cancel(errored.id)  # cancelled: retryable
        done = table.enqueue(ECHO, {"n": 3}, name="done one", queue=queue)
    return {"pending": pending.id, "cancelled": errored.id, "other": done.id}
