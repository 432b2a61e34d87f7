"""``tasktable demo`` serves the dashboard with the demo's tasks and prints a fresh login."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from .conftest import free_port

CLI = [sys.executable, "-c", "from tasktable.cli.main import run; run()"]


def test_the_demo_serves_its_tasks_in_the_dashboard_with_a_fresh_login(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    port = free_port()
    url = f"sqlite:///{tmp_path}/demo.sqlite3"
    options = ["--orders", "60", "--slots", "2", "--port", str(port), "--serve-seconds", "60"]
    proc = subprocess.Popen(
        [*CLI, "--db", url, "demo", *options],
        cwd=tmp_path,
        env={**subprocess_env, "COLUMNS": "300"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 90
        login = None
        while login is None or not any("Ctrl-C stops it" in line for line in lines):
            assert proc.poll() is None, "".join(lines) + (proc.stderr.read() if proc.stderr else "")
            assert time.monotonic() < deadline, "".join(lines)
            found = re.search(r"user demo, password (\S+)\)", "".join(lines))
            login = found.group(1) if found else None
            time.sleep(0.2)
        base = f"http://127.0.0.1:{port}"
        assert f"Dashboard: {base}/" in "".join(lines)
        with httpx.Client(base_url=base, follow_redirects=False) as client:
            page = client.get("/login")
            token = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert token
            answer = client.post(
                "/login",
                data={"csrf": token.group(1), "name": "demo", "password": login},
                headers={"Origin": base},
            )
            assert answer.status_code == 303, answer.text
            grid = client.get("/").text
            assert "90 - Delivered | Update Status" in grid
            assert "Export orders to CSV" in grid and "Download CSV" in grid
            assert "Import supplier feed" in grid
    finally:
        proc.terminate()  # SIGTERM ends the serving early
        code = proc.wait(timeout=30)
        reader.join(timeout=10)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    assert code == 0, "".join(lines)
