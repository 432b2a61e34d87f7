"""The Flask integration, through the code of docs/flask.md: the extension, the flash
notice, enqueue in the app's transaction, and the dashboard and API under /tasks."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("flask", reason="Flask is not installed (pip install -e '.[dev]')")
pytest.importorskip("a2wsgi", reason="a2wsgi is not installed (pip install -e '.[dev]')")

from flask import Flask
from sqlalchemy import Engine, create_engine, text

from tasktable import TaskStatus, TaskTable
from tasktable.auth import Identity
from tasktable.contrib.flask import (
    TaskTableExtension,
    flash_background_notice,
    get_table,
)

from ..conftest import burst_worker

SERVERS = pytest.mark.parametrize("server_url", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def code(docs_package: Callable[[str], Path]) -> Path:
    return docs_package("docs/flask.md")


@pytest.fixture
def app(code: Path, server_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    with TaskTable(server_url) as table:
        table.migrate()  # a server database is migrated once, by hand
    import myapp.app

    engines: list[Engine] = []

    def recording_create_engine(*args: Any, **kwargs: Any) -> Engine:
        engines.append(create_engine(*args, **kwargs))
        return engines[-1]

    monkeypatch.setattr(myapp.app, "create_engine", recording_create_engine)
    flask_app = myapp.app.create_app(server_url)
    flask_app.config["TESTING"] = True
    yield flask_app
    get_table(flask_app).close()
    for engine in engines:  # the app's own engine, which the docs' app never disposes
        engine.dispose()


def audit_rows(url: str) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        count = int(conn.execute(text("SELECT count(*) FROM audit")).scalar_one())
    engine.dispose()
    return count


def flashed(html: str) -> list[str]:
    return re.findall(r'<p class="info">(.*?)</p>', html, re.S)


@SERVERS
def test_export_is_enqueued_with_a_notice_then_run_by_a_worker(
    app: Flask, code: Path, server_url: str, subprocess_env: dict[str, str]
) -> None:
    client = app.test_client()
    response = client.post("/reports")
    assert response.status_code == 302
    table = get_table(app)
    [task] = table.list().tasks
    assert (task.name, task.status) == ("Export report", TaskStatus.PENDING)
    assert audit_rows(server_url) == 1
    [notice] = flashed(client.get("/").get_data(as_text=True))
    assert notice == (
        f"&quot;Export report&quot; will run in the background (task #{task.id}). "
        f'<a href="/tasks/tasks/{task.id}">View task #{task.id}</a>'
    )

    burst_worker(server_url, subprocess_env, code)
    done = table.get(task.id)
    assert done.status is TaskStatus.SUCCESS
    assert done.action_link is not None
    assert done.action_link.route_path == f"tasks/{task.id}/files/report.csv"
    _, data = table.read_file(task.id, "report.csv")
    assert data.decode().splitlines() == ["n,square", "0,0", "1,1", "2,4"]


@SERVERS
def test_a_failure_before_the_commit_leaves_no_task(
    app: Flask, server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import myapp.app

    def broken(task: Any) -> None:
        raise RuntimeError("the notice failed")

    monkeypatch.setattr(myapp.app, "flash_background_notice", broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = app.test_client().post("/reports")
    assert response.status_code == 500
    assert get_table(app).count() == 0
    assert audit_rows(server_url) == 0


@SERVERS
def test_dashboard_and_api_are_mounted_behind_authorize(app: Flask) -> None:
    table = get_table(app)
    task = table.enqueue("myapp.tasks:ExportReport", {"rows": 1})
    client = app.test_client()
    # authorize() says no: the app's own lock comes first.
    assert client.get("/tasks/", buffered=True).status_code == 403
    assert client.get("/tasks/api/v1/health", buffered=True).status_code == 403
    with client.session_transaction() as session:
        session["role"] = "admin"
    # Through: the dashboard asks for its own login, at URLs under the prefix.
    page = client.get("/tasks/", buffered=True)
    assert page.status_code in (302, 303)
    assert page.headers["Location"].startswith("/tasks/login")
    assert client.get("/tasks/api/v1/health", buffered=True).status_code == 200
    assert client.get("/tasks/api/v1/tasks", buffered=True).status_code == 401
    _, secret = Identity(table).create_token("flask-test", "viewer")
    listed = client.get(
        "/tasks/api/v1/tasks", headers={"Authorization": f"Bearer {secret}"}, buffered=True
    )
    assert listed.status_code == 200
    assert [t["id"] for t in listed.get_json()["tasks"]] == [task.id]
    # Flask's own routes are untouched.
    assert client.get("/").status_code == 200


@SERVERS
def test_files_download_through_the_mount(
    app: Flask, code: Path, server_url: str, subprocess_env: dict[str, str]
) -> None:
    table = get_table(app)
    task = table.enqueue("myapp.tasks:ExportReport", {"rows": 2})
    burst_worker(server_url, subprocess_env, code)
    _, secret = Identity(table).create_token("downloader", "viewer")
    client = app.test_client()
    with client.session_transaction() as session:
        session["role"] = "admin"
    response = client.get(
        f"/tasks/api/v1/tasks/{task.id}/files/report.csv",
        headers={"Authorization": f"Bearer {secret}"},
        buffered=True,
    )
    assert response.status_code == 200
    assert response.get_data(as_text=True).splitlines() == ["n,square", "0,0", "1,1"]


def test_extension_reads_the_config(sqlite_url: str, tmp_path: Path) -> None:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="test",
        TASKTABLE_DATABASE_URL=sqlite_url,
        TASKTABLE_DASHBOARD_URL="https://x.test/t",
    )
    ext = TaskTableExtension()
    ext.init_app(app)
    with app.test_request_context("/"):
        assert ext.table is get_table() is app.extensions["tasktable"]
        assert ext.table.url == sqlite_url
        task = ext.table.enqueue("tests.support.handlers:Echo", {}, name="<b>x</b>")
        notice = flash_background_notice(task, category="warning")
        assert notice.url == f"https://x.test/t/tasks/{task.id}"
        from flask import get_flashed_messages

        [(category, message)] = get_flashed_messages(with_categories=True)
        assert category == "warning"
        assert "&lt;b&gt;x&lt;/b&gt;" in str(message) and "<b>" not in str(message)
    get_table(app).close()
    plain = Flask("plain")
    with plain.app_context(), pytest.raises(RuntimeError, match="TaskTableExtension"):
        get_table()


def test_a_table_of_your_own_and_no_mount(sqlite_url: str) -> None:
    table = TaskTable(sqlite_url)
    app = Flask(__name__)
    TaskTableExtension(app, table=table)
    assert get_table(app) is table
    assert (
        app.test_client().get("/tasks/", buffered=True).status_code == 404
    )  # no prefix: nothing mounted
    table.close()
