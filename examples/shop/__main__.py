"""``python -m examples.shop [serve|worker]``: the shop and a worker (default: both).

Environment: ``SHOP_DATABASE_URL`` (default ``sqlite:///var/shop/shop.sqlite3``),
``SHOP_HOST``/``SHOP_PORT`` (``127.0.0.1:5000``), ``SHOP_THRESHOLD`` (5),
``SHOP_ADMIN_PASSWORD`` (the dashboard user ``admin``; default ``shop-admin``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

from tasktable import TaskTable
from tasktable.auth import Identity, IdentityConflict
from tasktable.cli.main import main as tasktable_main

from . import db


def ensure_admin(url: str) -> str:
    """A dashboard user for the example (never do this with a known password in production)."""
    password = os.environ.get("SHOP_ADMIN_PASSWORD") or "shop-admin"
    with TaskTable(url) as table, contextlib.suppress(IdentityConflict):  # from an earlier run
        Identity(table).add_user("admin", "admin", password)
    return password


def serve(url: str) -> None:
    from .app import create_app

    host = os.environ.get("SHOP_HOST") or "127.0.0.1"
    port = int(os.environ.get("SHOP_PORT") or 5000)
    app = create_app(url)
    print(f"Shop admin on http://{host}:{port}/ (dashboard: /tasks/, user admin)", flush=True)
    app.run(host=host, port=port, threaded=True, use_reloader=False)


def worker(url: str) -> int:
    return tasktable_main(["--db", url, "worker", "--slots", "2"])


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    url = db.database_url()
    command = argv[0] if argv else "all"
    if command == "worker":
        return worker(url)
    with TaskTable(url) as table:
        table.migrate()  # before the two processes start: no race on a fresh file
    password = ensure_admin(url)
    if command == "serve":
        serve(url)
        return 0
    if command != "all":
        print(__doc__, file=sys.stderr)
        return 2
    print(f"Dashboard login: admin / {password}", flush=True)
    child = subprocess.Popen([sys.executable, "-m", "examples.shop", "worker"])
    signal.signal(signal.SIGTERM, _interrupt)  # stop the worker too, gracefully
    try:
        serve(url)
    except KeyboardInterrupt:
        pass
    finally:
        child.terminate()
        child.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
