"""The dashboard through its ASGI app (no browser): sessions, CSRF and Origin checks,
roles, redirects, flash notices, bounded bulk actions, capped counts, mounting under
a prefix, and that GET never changes anything.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from tasktable import TaskStatus, TaskTable
from tasktable.auth import Identity, LoginThrottle
from tasktable.dashboard import DashboardConfig
from tasktable.settings import Settings
from tasktable.web import create_app

from .asgi import TestClient
from .conftest import H

PASSWORD = "correct horse battery"
BASE = "http://testserver"
ORIGIN = {"Origin": BASE}


@dataclass
class Site:
    table: TaskTable
    identity: Identity

    def app(self, prefix: str = "", **config: Any) -> Any:
        app = create_app(self.table, identity=self.identity, dashboard=DashboardConfig(**config))
        if prefix:
            return Starlette(routes=[Mount(prefix, app=app)])
        return app

    def client(self, prefix: str = "", **config: Any) -> TestClient:
        return TestClient(self.app(prefix, **config), base_url=BASE, follow_redirects=False)

    def park(self, count: int, **options: Any) -> list[int]:
        """Pending tasks on a queue no worker serves."""
        return [
            self.table.enqueue(f"{H}:SlowProgress", {"n": i}, queue="parked", **options).id
            for i in range(count)
        ]


@pytest.fixture
def site(sqlite_url: str, settings: Settings) -> Iterator[Site]:
    table = TaskTable(sqlite_url, settings=settings)
    table.migrate()
    identity = Identity(table, throttle=LoginThrottle(max_per_name=3, max_per_client=50))
    identity.add_user("olivia", "operator", PASSWORD)
    identity.add_user("victor", "viewer", PASSWORD)
    try:
        yield Site(table=table, identity=identity)
    finally:
        table.close()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def login(client: TestClient, name: str = "olivia", prefix: str = "", **extra: str) -> Any:
    page = client.get(f"{prefix}/login")
    assert page.status_code == 200
    form = {"csrf": csrf_of(page.text), "name": name, "password": PASSWORD, **extra}
    return client.post(f"{prefix}/login", data=form, headers=ORIGIN)


def token(client: TestClient, path: str = "/") -> str:
    return csrf_of(client.get(path).text)


def checksum(table: TaskTable) -> str:
    rows = table.list(sort="id", limit=1000).tasks
    text = "|".join(f"{t.id}:{t.status.value}:{t.name}" for t in rows)
    return hashlib.sha256(text.encode()).hexdigest()


# -- sessions ---------------------------------------------------------------------------------
def test_login_sets_a_strict_httponly_session_cookie_and_logout_ends_it(site: Site) -> None:
    client = site.client()
    assert client.get("/").headers["location"] == "/login"
    answer = login(client)
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    cookie = answer.headers["set-cookie"]
    assert "tasktable_session=" in cookie and "HttpOnly" in cookie
    assert "SameSite=strict" in cookie and "Path=/" in cookie and "Secure" not in cookie
    assert client.get("/").status_code == 200
    stolen = client.cookies.get("tasktable_session")

    assert client.post("/logout", data={"csrf": token(client)}, headers=ORIGIN).status_code == 303
    assert client.get("/").status_code == 303
    replay = site.client()
    replay.cookies.set("tasktable_session", stolen)
    assert replay.get("/").headers["location"] == "/login"  # ended server-side


def test_sessions_survive_a_restart_and_end_with_a_new_password_or_user(site: Site) -> None:
    first = site.client()
    login(first)
    cookie = first.cookies.get("tasktable_session")
    restarted = site.client()  # a new app: nothing in memory
    restarted.cookies.set("tasktable_session", cookie)
    assert restarted.get("/").status_code == 200

    site.identity.set_password("olivia", "another password!")
    assert restarted.get("/").status_code == 303

    login(restarted, "victor")
    assert restarted.get("/").status_code == 200
    site.identity.remove_user("victor")
    assert restarted.get("/").status_code == 303


def test_secure_cookies_over_https_or_when_configured(site: Site) -> None:
    client = TestClient(site.app(), base_url="https://testserver", follow_redirects=False)
    page = client.get("/login")
    form = {"csrf": csrf_of(page.text), "name": "olivia", "password": PASSWORD}
    answer = client.post("/login", data=form, headers={"Origin": "https://testserver"})
    assert "Secure" in answer.headers["set-cookie"]
    configured = site.client(secure_cookies=True)
    assert "Secure" in configured.get("/login").headers["set-cookie"]


def test_failed_logins_are_rate_limited(site: Site) -> None:
    client = site.client()
    page = client.get("/login")
    form = {"csrf": csrf_of(page.text), "name": "olivia", "password": "wrong password"}
    statuses = []
    for _ in range(4):
        form["csrf"] = client.cookies.get("tasktable_login")
        statuses.append(client.post("/login", data=form, headers=ORIGIN).status_code)
    assert statuses == [401, 401, 401, 429]
    answer = login(client)  # even the right password, until the window passes
    assert answer.status_code == 429 and int(answer.headers["retry-after"]) > 0
    assert "Too many failed logins" in answer.text


def test_login_refuses_foreign_origins_missing_tokens_and_open_redirects(site: Site) -> None:
    client = site.client()
    page = client.get("/login")
    form = {"csrf": csrf_of(page.text), "name": "olivia", "password": PASSWORD}
    evil = {"Origin": "https://evil.example"}
    assert client.post("/login", data=form, headers=evil).status_code == 403
    assert client.post("/login", data={**form, "csrf": "forged"}, headers=ORIGIN).status_code == 403
    assert client.post("/login", data=form).status_code == 403  # no Origin, no Referer
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"):
        answer = login(site.client(), next=target)
        assert answer.headers["location"] == "/", target
    answer = login(site.client(), next="/tasks/7?back=%2F")
    assert answer.headers["location"] == "/tasks/7?back=%2F"


# -- state changes ---------------------------------------------------------------------------
def test_every_post_needs_the_csrf_token_and_a_same_origin_header(site: Site) -> None:
    (task_id,) = site.park(1)
    client = site.client()
    login(client)
    csrf = token(client)
    url = f"/tasks/{task_id}/cancel"
    refused = [
        client.post(url, data={}, headers=ORIGIN),
        client.post(url, data={"csrf": "0" * 64}, headers=ORIGIN),
        client.post(url, data={"csrf": csrf}),
        client.post(url, data={"csrf": csrf}, headers={"Origin": "http://evil.example"}),
        client.post(url, data={"csrf": csrf}, headers={"Origin": "null"}),
        client.post(url, data={"csrf": csrf}, headers={"Referer": "http://evil.example/x"}),
        client.post(url, data={"csrf": csrf}, headers={"Origin": "http://testserver.evil.example"}),
    ]
    assert [r.status_code for r in refused] == [403] * 7
    assert site.table.get(task_id).status is TaskStatus.PENDING
    same = client.post(url, data={"csrf": csrf}, headers={"Referer": f"{BASE}/tasks/1"})
    assert same.status_code == 303
    assert site.table.get(task_id).status is TaskStatus.CANCELLED


def test_trusted_origins_allow_a_proxy_that_rewrites_the_host(site: Site) -> None:
    (task_id,) = site.park(1)
    client = site.client(trusted_origins=("https://admin.example.com",))
    login(client)
    answer = client.post(
        f"/tasks/{task_id}/cancel",
        data={"csrf": token(client)},
        headers={"Origin": "https://admin.example.com"},
    )
    assert answer.status_code == 303


def test_a_viewer_gets_403_on_every_action_and_sees_no_buttons(site: Site) -> None:
    ids = site.park(2)
    client = site.client()
    login(client, "victor")
    grid = client.get("/").text
    assert 'name="ids"' not in grid and "/tasks/bulk" not in grid
    page = client.get(f"/tasks/{ids[0]}").text
    assert "/retry" not in page and "/cancel" not in page and "/delete" not in page
    csrf = token(client)
    before = checksum(site.table)
    for action in ("retry", "cancel", "delete"):
        answer = client.post(f"/tasks/{ids[0]}/{action}", data={"csrf": csrf}, headers=ORIGIN)
        assert answer.status_code == 403
        assert "viewer role" in answer.text
    bulk = {"csrf": csrf, "action": "delete", "ids": [str(i) for i in ids]}
    assert client.post("/tasks/bulk", data=bulk, headers=ORIGIN).status_code == 403
    assert checksum(site.table) == before


def test_get_never_changes_anything(site: Site) -> None:
    ids = site.park(3)
    client = site.client()
    login(client)
    before = checksum(site.table)
    for path in ("/", "/overview", f"/tasks/{ids[0]}", f"/live.json?ids={ids[0]}", "/login"):
        assert client.get(path).status_code in (200, 303), path
    for action in ("retry", "cancel", "delete"):
        assert client.get(f"/tasks/{ids[0]}/{action}").status_code == 405
    assert client.get("/tasks/bulk?action=delete&scope=filter").status_code in (405, 422)
    assert client.get("/logout").status_code == 405
    assert checksum(site.table) == before


# -- actions and notices ------------------------------------------------------------------------
def test_bulk_by_ids_says_what_happened_once(site: Site) -> None:
    ids = site.park(3)
    client = site.client()
    login(client)
    form = {"csrf": token(client), "action": "cancel", "ids": [str(i) for i in ids], "next": "/"}
    answer = client.post("/tasks/bulk", data=form, headers=ORIGIN)
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    shown = client.get("/").text
    assert "3 tasks cancelled." in shown
    assert "3 tasks cancelled." not in client.get("/").text  # once
    form["action"] = "retry"
    client.post("/tasks/bulk", data=form, headers=ORIGIN)
    assert "3 tasks will run again in the background." in client.get("/").text


def test_a_forged_flash_cookie_is_ignored(site: Site) -> None:
    client = site.client()
    login(client)
    client.cookies.set("tasktable_flash", "W1sic3VjY2VzcyIsIkhBQ0tFRCJdXQ.deadbeef")
    assert "HACKED" not in client.get("/").text


def test_bulk_on_all_matching_a_filter_stops_at_the_limit(site: Site) -> None:
    site.park(5)
    other = site.table.enqueue(f"{H}:SlowProgress", {}, queue="elsewhere").id
    client = site.client(bulk_limit=3)
    login(client)
    grid = client.get("/?queue=parked").text
    assert "at most 3 per run" in grid
    form = {"csrf": csrf_of(grid), "action": "cancel", "scope": "filter", "queue": "parked"}
    client.post("/tasks/bulk", data=form, headers=ORIGIN)
    page = client.get("/").text
    assert "3 tasks cancelled." in page and "Stopped at the limit of 3 tasks" in page
    counts = site.table.stats().by_queue["parked"]
    assert counts["cancelled"] == 3 and counts["pending"] == 2
    assert site.table.get(other).status is TaskStatus.PENDING


def test_single_actions_and_their_notices(site: Site) -> None:
    (task_id,) = site.park(1)
    client = site.client()
    login(client)
    csrf = token(client)
    client.post(f"/tasks/{task_id}/cancel", data={"csrf": csrf}, headers=ORIGIN)
    assert "was cancelled" in client.get(f"/tasks/{task_id}").text
    client.post(f"/tasks/{task_id}/retry", data={"csrf": csrf}, headers=ORIGIN)
    assert "will run again in the background" in client.get(f"/tasks/{task_id}").text
    conflict = client.post(f"/tasks/{task_id}/retry", data={"csrf": csrf}, headers=ORIGIN)
    assert conflict.status_code == 409 and "only error or cancelled" in conflict.text
    answer = client.post(f"/tasks/{task_id}/delete", data={"csrf": csrf}, headers=ORIGIN)
    assert answer.headers["location"] == "/"
    assert "was deleted" in client.get("/").text
    assert client.get(f"/tasks/{task_id}").status_code == 404


# -- the grid --------------------------------------------------------------------------------
def test_counts_per_status_are_capped(site: Site) -> None:
    site.park(5)
    client = site.client(count_cap=3)
    login(client)
    page = client.get("/").text
    assert re.search(r'data-count="pending">3\+<', page)
    assert re.search(r'data-count="error">0<', page)
    assert "3+ tasks" in page


def test_keyset_paging_filters_search_and_sort(site: Site) -> None:
    ids = site.park(30)
    site.table.enqueue(f"{H}:Report", {"needle": "haystack-42"}, queue="other")
    client = site.client()
    login(client)
    first = client.get("/?queue=parked&limit=25").text
    assert first.count('name="ids"') == 25
    next_url = re.search(r'href="([^"]+)" rel="next"', first)
    assert next_url
    second = client.get(next_url.group(1).replace("&amp;", "&")).text
    assert second.count('name="ids"') == 5 and "Page 2" in second
    assert f'value="{ids[0]}"' in second
    assert client.get("/?q=haystack-42").text.count('name="ids"') == 1
    by_name = client.get("/?sort=name&queue=parked").text
    assert 'aria-sort="ascending"' in by_name
    bogus = client.get("/?sort=password_hash&cursor=garbage").text
    assert "Cannot sort by" in bogus
    assert client.get("/?created_from=yesterday").status_code == 200


def test_live_json_reports_status_and_progress(site: Site) -> None:
    ids = site.park(2)
    client = site.client()
    assert client.get(f"/live.json?ids={ids[0]}").status_code == 401
    login(client)
    data = client.get(f"/live.json?ids={ids[0]},{ids[1]},999").json()
    assert set(data["tasks"]) == {str(i) for i in ids}
    assert data["tasks"][str(ids[0])]["status"] == "pending"
    assert client.get("/live.json?ids=1;DROP").status_code == 422


# -- mounting and headers ------------------------------------------------------------------------
def test_mounted_under_a_prefix_every_url_stays_inside_it(site: Site) -> None:
    ids = site.park(1)
    client = site.client(prefix="/ops/tasks")
    assert client.get("/ops/tasks/").headers["location"] == "/ops/tasks/login"
    answer = login(client, prefix="/ops/tasks")
    assert answer.headers["location"] == "/ops/tasks/"
    assert "Path=/ops/tasks/" in answer.headers["set-cookie"]
    page = client.get("/ops/tasks/").text
    urls = re.findall(r'(?:href|src|action)="([^"#]+)"', page)
    assert urls and all(u.startswith("/ops/tasks/") for u in urls), urls
    assert client.get(f"/ops/tasks/tasks/{ids[0]}").status_code == 200
    assert client.get("/ops/tasks/static/dashboard.css").status_code == 200
    assert client.get("/ops/tasks/api/v1/health").json()["status"] == "ok"
    csrf = token(client, "/ops/tasks/")
    form = {"csrf": csrf, "next": "/ops/tasks/"}
    moved = client.post(f"/ops/tasks/tasks/{ids[0]}/cancel", data=form, headers=ORIGIN)
    assert moved.headers["location"] == "/ops/tasks/"


def test_security_headers_on_pages_static_files_and_errors(site: Site) -> None:
    client = site.client()
    for path in ("/login", "/static/dashboard.js", "/no/such/page", "/"):
        headers = client.get(path).headers
        assert headers["content-security-policy"].startswith("default-src 'self'"), path
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
    assert client.get("/login").headers["cache-control"] == "no-store"
    assert client.get("/no/such/page").status_code == 404


def test_files_download_as_attachments(site: Site, subprocess_env: dict[str, str]) -> None:
    task = site.table.enqueue(f"{H}:Report", {"rows": 2}, queue="files")
    from tasktable.worker.supervisor import Worker

    Worker(site.table, slots=1, queues=["files"], burst=True, mode="thread").run()
    client = site.client()
    login(client)
    page = client.get(f"/tasks/{task.id}").text
    assert (
        f'href="/tasks/{task.id}/files/report-{task.id}.csv?target' not in page
    )  # target is not a param
    assert f'href="/tasks/{task.id}/files/report-{task.id}.csv"' in page
    answer = client.get(f"/tasks/{task.id}/files/report-{task.id}.csv")
    assert answer.status_code == 200 and answer.text.startswith("order_id,status")
    assert answer.headers["content-disposition"].startswith("attachment;")
    assert answer.headers["content-type"] == "application/octet-stream"
    assert answer.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert client.get(f"/tasks/{task.id}/files/nope.csv").status_code == 404


def test_the_background_notice_links_to_the_task_page(site: Site) -> None:
    (task_id,) = site.park(1)
    notice = site.table.notice(site.table.get(task_id))
    path = notice.url.split("://", 1)[1].split("/", 1)[1]
    client = site.client()
    login(client)
    assert client.get(f"/{path}").status_code == 200


def test_sessions_counts_and_bulk_on_every_database(db_url: str, settings: Settings) -> None:
    with TaskTable(db_url, settings=settings) as table:
        table.migrate()
        identity = Identity(table)
        identity.add_user("olivia", "operator", PASSWORD)
        site = Site(table=table, identity=identity)
        ids = site.park(4)
        client = site.client(count_cap=2, bulk_limit=3)
        login(client)
        page = client.get("/").text
        assert re.search(r'data-count="pending">2\+<', page)
        restarted = site.client(count_cap=2, bulk_limit=3)  # a new app, same database
        restarted.cookies.set("tasktable_session", client.cookies.get("tasktable_session"))
        form = {"csrf": csrf_of(page), "action": "cancel", "scope": "filter", "queue": "parked"}
        restarted.post("/tasks/bulk", data=form, headers=ORIGIN)
        assert "Stopped at the limit of 3 tasks" in restarted.get("/").text
        assert [table.get(i).status.value for i in ids].count("cancelled") == 3
        restarted.post("/logout", data={"csrf": csrf_of(page)}, headers=ORIGIN)
        assert client.get("/").status_code == 303
