"""The dashboard end to end: headless Chromium against a real ``tasktable serve``.

On SQLite and PostgreSQL: log in, filter, open a task, download its file, retry
and bulk-cancel, watch a running task's progress move, log out; a viewer cannot
act; script payloads never run; CSRF-less and cross-origin posts are refused.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from tasktable import TaskStatus, TaskTable

from .conftest import Dialogs, H, Server, login, screenshot
from .handlers import IMG, SCRIPT


def wait_for_status(
    table: TaskTable, task_id: int, status: TaskStatus, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while table.get(task_id).status is not status:
        assert time.monotonic() < deadline, f"task {task_id} never became {status.value}"
        time.sleep(0.1)


def poll(page: Any, script: str, timeout: float = 20) -> Any:
    """Wait until ``script`` (a function) returns a truthy value in the page; return it.
    (Playwright's wait_for_function evaluates strings, which the dashboard's CSP forbids.)"""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(script)
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {script}"
        time.sleep(0.1)


def seed(server: Server) -> dict[str, int]:
    """Finished tasks (an export with a file, a failure) and three parked pending tasks."""
    table = server.table
    ids = {
        "report": table.enqueue(f"{H}:Report", {"rows": 4}, queue="seed").id,
        "flaky": table.enqueue(f"{H}:Flaky", {"feed": "supplier"}, queue="seed").id,
    }
    server.run_burst("seed")
    for i in range(3):
        ids[f"parked{i}"] = table.enqueue(
            f"{H}:SlowProgress", {"steps": 2, "n": i}, name=f"Parked job {i}", queue="parked"
        ).id
    return ids


def test_an_operator_filters_opens_downloads_retries_cancels_and_logs_out(
    served: Server, page: Any, dialogs: Dialogs
) -> None:
    ids = seed(served)
    table = served.table
    page.goto(served.base + "/")
    assert page.url.startswith(f"{served.base}/login")  # login first
    login(page, served, "olivia")
    grid = page.locator("[data-testid=grid] tbody tr")
    assert grid.count() == 5
    screenshot(page, served, "grid")

    # filter by name: only the export is left
    page.fill("[data-testid=filters] input[name=name]", "export")
    page.click("[data-testid=filters] button[type=submit]")
    page.wait_for_url(re.compile(r"name=export"))
    assert grid.count() == 1
    assert "Export orders to CSV" in grid.first.inner_text()

    # open the task and download its file, from the file list and the action link
    page.click(f"[data-testid=grid] a[href$='/tasks/{ids['report']}'] >> nth=1")
    page.wait_for_url(f"**/tasks/{ids['report']}**")
    with page.expect_download() as info:
        page.click("[data-testid=file-link]")
    body = Path(info.value.path()).read_text()
    assert body.startswith("order_id,status\n") and body.count("\n") == 5
    with page.expect_download() as info:
        page.click("[data-testid=action-link] a")
    assert info.value.suggested_filename == f"report-{ids['report']}.csv"
    screenshot(page, served, "task")

    # retry the failed task: a flash notice, and it is pending again
    page.goto(f"{served.base}/tasks/{ids['flaky']}")
    assert "ConnectionError" in page.inner_text("[data-testid=traceback]")
    page.click("[data-testid=retry]")
    assert "will run again in the background" in page.inner_text(".notices")
    assert table.get(ids["flaky"]).status is TaskStatus.PENDING

    # bulk-cancel the parked tasks: filter by queue, select all, cancel
    page.goto(f"{served.base}/?queue=parked")
    page.check("[data-select-all]")
    page.click("[data-testid=grid-form] .toolbar button[value=cancel]")
    assert "3 tasks cancelled." in page.inner_text(".notices")
    statuses = {table.get(ids[f"parked{i}"]).status for i in range(3)}
    assert statuses == {TaskStatus.CANCELLED}

    # log out: the session is gone for good
    page.click("[data-testid=logout]")
    page.wait_for_url("**/login")
    page.goto(served.base + "/overview")
    assert "/login" in page.url
    assert dialogs.alerts == []


def test_a_running_tasks_progress_moves_without_a_reload(served: Server, page: Any) -> None:
    seed(served)
    task = served.table.enqueue(f"{H}:SlowProgress", {"steps": 40, "seconds": 0.25}, queue="live")
    served.start_worker("live")
    wait_for_status(served.table, task.id, TaskStatus.RUNNING)
    login(page, served, "olivia")
    page.goto(f"{served.base}/tasks/{task.id}")
    page.evaluate("window.__stillHere = true")
    bar = "[data-field=progress] progress"
    first = poll(
        page,
        f"() => document.querySelector('{bar}').value >= 2 && document.querySelector('{bar}').value",
    )
    poll(page, f"() => document.querySelector('{bar}').value > {first}")
    assert page.evaluate("window.__stillHere") is True  # updated in place, not reloaded

    page.goto(f"{served.base}/")  # the grid's row moves too
    row = f"tr[data-id='{task.id}'] {bar}"
    start = page.eval_on_selector(row, "el => el.value")
    poll(page, f'() => document.querySelector("{row}").value > {start}')
    screenshot(page, served, "grid-live")
    page.goto(f"{served.base}/overview")
    assert page.locator("[data-testid=workers] tbody tr").count() >= 1
    screenshot(page, served, "overview")

    page.goto(f"{served.base}/tasks/{task.id}")  # the page reloads itself when the task ends
    page.wait_for_selector(".task-head .badge-success", timeout=30_000)
    assert "Indexed 40 batches." in page.inner_text(".messages-table")


def test_a_viewer_sees_no_actions_and_is_refused_if_posting(served: Server, page: Any) -> None:
    table = served.table
    task = table.enqueue(f"{H}:SlowProgress", {"steps": 2}, queue="parked")
    login(page, served, "victor")
    assert page.locator("[data-testid=grid] tbody tr").count() == 1
    for selector in (
        "input[name=ids]",
        "[data-testid=bulk-filter]",
        ".toolbar",
        "[data-select-all]",
    ):
        assert page.locator(selector).count() == 0, selector
    page.goto(f"{served.base}/tasks/{task.id}")
    for action in ("retry", "cancel", "delete"):
        assert page.locator(f"[data-testid={action}]").count() == 0
    csrf = page.get_attribute("input[name=csrf]", "value")  # the logout form's token
    for action in ("cancel", "delete"):
        response = page.request.post(
            f"{served.base}/tasks/{task.id}/{action}",
            form={"csrf": csrf},
            headers={"Origin": served.base},
        )
        assert response.status == 403, action
    response = page.request.post(
        f"{served.base}/tasks/bulk",
        form={"csrf": csrf, "action": "delete", "scope": "filter"},
        headers={"Origin": served.base},
    )
    assert response.status == 403
    assert table.get(task.id).status is TaskStatus.PENDING


def test_script_payloads_never_run_on_any_page(served: Server, page: Any, dialogs: Dialogs) -> None:
    table = served.table
    hostile = table.enqueue(f"{H}:Hostile", {"note": SCRIPT, IMG: [IMG]}, name=SCRIPT, queue="x")
    link = table.enqueue(f"{H}:HostileLink", [IMG, SCRIPT], name=IMG, queue="x")
    served.run_burst("x")
    assert table.get(hostile.id).status is TaskStatus.ERROR
    assert table.get(link.id).status is TaskStatus.SUCCESS
    login(page, served, "olivia")
    pages = ["/", f"/?q={IMG}", f"/tasks/{hostile.id}", f"/tasks/{link.id}", "/overview"]
    for path in pages:
        page.goto(served.base + path)
        page.wait_for_load_state("load")
        # escaped, not parsed: the payloads' elements never reach the DOM
        assert page.evaluate("document.querySelectorAll('img[src=x], svg[onload]').length") == 0
        assert page.evaluate("document.scripts.length") == 1  # ours, from /static
        assert page.locator("a[href^='javascript' i], a[href*='script:' i]").count() == 0
    page.goto(f"{served.base}/tasks/{hostile.id}")
    text = page.inner_text("main")
    assert SCRIPT in text and IMG in text  # shown as text
    assert f"RuntimeError: {SCRIPT} {IMG}" in page.inner_text("[data-testid=traceback]")
    screenshot(page, served, "xss")
    assert dialogs.seen == []

    # escaping alone suffices: the same pages with the CSP switched off in the browser
    bare = page.context.browser.new_context(bypass_csp=True)
    try:
        tab = bare.new_page()
        tab.on("dialog", dialogs)
        login(tab, served, "olivia")
        for path in pages:
            tab.goto(served.base + path)
            tab.wait_for_load_state("load")
            assert tab.evaluate("document.querySelectorAll('img[src=x], svg[onload]').length") == 0
    finally:
        bare.close()
    assert dialogs.seen == []


def test_pages_read_and_forms_work_without_javascript(served: Server, browser: Any) -> None:
    ids = seed(served)
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        login(page, served, "olivia")
        assert page.locator("[data-testid=grid] tbody tr").count() == 5
        page.goto(f"{served.base}/tasks/{ids['report']}")
        assert "Exported 4 orders" in page.inner_text(".messages-table")
        page.goto(f"{served.base}/overview")
        assert page.locator("[data-testid=throughput-chart] rect.ok").count() >= 1
        page.goto(f"{served.base}/?queue=parked")
        page.check(f"input[name=ids][value='{ids['parked0']}']")
        page.click("[data-testid=grid-form] .toolbar button[value=cancel]")
        assert "1 task cancelled." in page.inner_text(".notices")
    finally:
        context.close()
    assert served.table.get(ids["parked0"]).status is TaskStatus.CANCELLED


def test_csrf_less_and_cross_origin_posts_are_refused(served: Server, page: Any) -> None:
    table = served.table
    task = table.enqueue(f"{H}:SlowProgress", {"steps": 2}, queue="parked")
    login(page, served, "olivia")
    page.goto(f"{served.base}/tasks/{task.id}")
    csrf = page.get_attribute("input[name=csrf]", "value")
    url = f"{served.base}/tasks/{task.id}/cancel"
    origin = {"Origin": served.base}
    assert page.request.post(url, form={}, headers=origin).status == 403  # no token
    assert page.request.post(url, form={"csrf": "x" * 64}, headers=origin).status == 403
    evil = {"Origin": "http://evil.example"}
    assert page.request.post(url, form={"csrf": csrf}, headers=evil).status == 403
    assert table.get(task.id).status is TaskStatus.PENDING

    # a real cross-site form: another origin's page posts to the dashboard
    evil_page = (
        f'<form method="post" action="{url}"><input name="csrf" value="{csrf}">'
        '<button id="go">win a prize</button></form>'
    )
    page.route(
        "http://evil.example/**",
        lambda route: route.fulfill(status=200, content_type="text/html", body=evil_page),
    )
    page.goto("http://evil.example/")
    with page.expect_response(url) as answer:
        page.click("#go")
    assert answer.value.status == 403
    assert table.get(task.id).status is TaskStatus.PENDING

    # the same form from the dashboard itself works
    page.goto(f"{served.base}/tasks/{task.id}")
    page.click("[data-testid=cancel]")
    assert "was cancelled" in page.inner_text(".notices")
    assert table.get(task.id).status is TaskStatus.CANCELLED


def test_the_login_page_and_its_headers(served: Server, page: Any) -> None:
    response = page.goto(f"{served.base}/login")
    headers = response.headers
    csp = headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    page.fill("input[name=name]", "olivia")
    page.fill("input[name=password]", "not the password")
    page.click("form button[type=submit]")
    assert "Wrong user name or password." in page.inner_text("[role=alert]")
    screenshot(page, served, "login")
    login(page, served, "olivia")
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["tasktable_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
