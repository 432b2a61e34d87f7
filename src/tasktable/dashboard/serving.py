"""Serving the dashboard from a thread, for ``tasktable demo``: a fresh login, the URL,
and serving until Ctrl-C (or for a number of seconds, in tests)."""

from __future__ import annotations

import secrets
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..app import TaskTable
from ..auth import Identity, IdentityNotFound

if TYPE_CHECKING:
    import uvicorn

DEMO_USER = "demo"
DEMO_ROLE = "operator"


def fresh_login(table: TaskTable, name: str = DEMO_USER, role: str = DEMO_ROLE) -> str:
    """Give the user ``name`` a new random password (creating it if needed); return it.
    Sessions opened with an older password end."""
    identity = Identity(table)
    password = secrets.token_urlsafe(12)
    try:
        identity.set_password(name, password)
        identity.set_role(name, role)
    except IdentityNotFound:
        identity.add_user(name, role, password)
    return password


@dataclass
class ThreadedServer:
    """``tasktable.web.create_app`` served by uvicorn in a daemon thread."""

    table: TaskTable
    host: str = "127.0.0.1"
    port: int = 8080

    _server: uvicorn.Server | None = field(default=None, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self, timeout: float = 10.0) -> bool:
        """Start serving; False when it could not (e.g. the port is taken)."""
        import uvicorn

        from ..web import create_app

        config = uvicorn.Config(
            create_app(self.table),
            host=self.host,
            port=self.port,
            log_config=None,  # leave the caller's logging alone
            log_level="warning",
            server_header=False,
            lifespan="off",
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=server.run, name="tasktable-demo-serve", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def wait(self, seconds: float | None = None) -> None:
        """Serve until Ctrl-C or SIGTERM, or for ``seconds``; then stop."""
        thread = self._thread
        stopping = threading.Event()
        main = threading.current_thread() is threading.main_thread()
        previous = (
            {
                signum: signal.signal(signum, lambda *_: stopping.set())
                for signum in (signal.SIGTERM, signal.SIGINT)
            }
            if main
            else {}
        )
        try:
            deadline = None if seconds is None else time.monotonic() + seconds
            while thread is not None and thread.is_alive() and not stopping.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                thread.join(0.25)
        except KeyboardInterrupt:
            pass
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
            self.stop()

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
