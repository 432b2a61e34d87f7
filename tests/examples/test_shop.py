"""The example shop (``make example``) walked through in a real browser.

The shop runs as ``python -m examples.shop`` (the web app and a worker, as
``make example`` starts them) on a fresh SQLite file; Playwright drives
Debian's Chromium (never a browser of its own). The walk: a few orders set
delivered inline, more in the background with the notice, then the CSV export
downloaded through its action link after the dashboard's login.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("flask", reason="Flask is not installed (pip install -e '.[dev]')")
pytest.importorskip("playwright", reason="Playwright is not installed (pip install -e '.[dev]')")

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "walkthrough-pw"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the shop exited ({proc.returncode}):\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"the shop did not answer at {url}:\n{log.read_text()}")


@pytest.fixture
def shop(tmp_path: Path, subprocess_env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    env = dict(subprocess_env)
    env.update(
        SHOP_DATABASE_URL=f"sqlite:///{tmp_path}/shop.sqlite3",
        SHOP_PORT=str(port),
        SHOP_ADMIN_PASSWORD=PASSWORD,
        TASKTABLE_POLL_INTERVAL="100ms",
    )
    log = tmp_path / "shop.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "examples.shop"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base + "/", proc, log)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)  # the shop stops its worker, which ends gracefully
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(accept_downloads=True)
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    try:
        yield tab
    finally:
        context.close()


def statuses(page: Any, ids: range | list[int]) -> list[str]:
    return [page.inner_text(f"#order-{i} .status") for i in ids]


def select(page: Any, ids: range | list[int]) -> None:
    for i in ids:
        page.check(f"#order-{i} input[type=checkbox]")


def wait_for_task(page: Any, task_id: int, status: str = "success") -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        page.reload()
        cell = page.locator(f"#task-{task_id} .task-status")
        if cell.count() and cell.inner_text() == status:
            return
        time.sleep(0.3)
    pytest.fail(f"task {task_id} did not reach {status}: {page.inner_text('#tasks')}")


def notice_task_id(page: Any, name: str) -> int:
    notice = page.locator(".flash.info")
    text = notice.inner_text()
    assert f'"{name}" will run in the background (task #' in text
    link = notice.locator("a")
    href = link.get_attribute("href")
    task_id = int(href.rsplit("/", 1)[1])
    assert href == f"/tasks/tasks/{task_id}"
    assert link.inner_text() == f"View task #{task_id}"
    return task_id


def test_walk_through_the_shop(shop: str, page: Any, tmp_path: Path) -> None:
    page.goto(shop + "/")
    assert page.locator("#orders-form tbody tr").count() == 30

    # A few orders: the mass action runs within the request (the seed's inline branch).
    select(page, [2, 3, 4])
    page.click("#set-delivered")
    assert "3 of 3 delivered" in page.inner_text(".flash.success")
    assert statuses(page, [2, 3, 4]) == ["delivered"] * 3

    # More than the threshold: a background task, the notice, then the worker's result.
    select(page, range(6, 13))  # order 10 is still processing: it stays so
    page.click("#set-delivered")
    delivered_task = notice_task_id(page, "90 - Delivered | Update Status")
    wait_for_task(page, delivered_task)
    assert page.inner_text(f"#task-{delivered_task} td:nth-child(4)") == "7/7"
    assert statuses(page, range(6, 13)) == ["delivered"] * 4 + ["processing"] + ["delivered"] * 2

    # The export: its action link downloads the CSV from the dashboard, after its login.
    page.click("#export")
    export_task = notice_task_id(page, "Export orders to CSV")
    wait_for_task(page, export_task)
    link = page.locator(f"#task-{export_task} a.action-link")
    assert link.inner_text() == "Download CSV"
    link.click()
    page.wait_for_url("**/tasks/login**")
    page.fill("input[name=name]", "admin")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_download() as download:
        page.click("button[type=submit]")
    saved = tmp_path / "orders.csv"
    download.value.save_as(saved)
    lines = saved.read_text().splitlines()
    assert lines[0] == "id,customer,total,status"
    assert len(lines) == 31
    assert lines[2].endswith(",delivered") and lines[10].endswith(",processing")

    # The dashboard's page of the background mass action: its message and progress.
    page.goto(f"{shop}/tasks/tasks/{delivered_task}")
    body = page.inner_text("body")
    assert "Order statuses updated for complete orders: 6 of 7 delivered." in body
    assert "90 - Delivered | Update Status" in body
