"""The code of docs/django.md, run: settings, ``myshop/tasks.py``, ``views.py``, ``urls.py``.

The conftest wrote the file blocks out as the package ``myshop``; the test
project routes to its URLs. Views run through Django's test client, tasks in a
worker subprocess.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("django", reason="Django is not installed (pip install -e '.[dev]')")
pytest.importorskip(
    "tasktable.contrib.django._compat",
    reason="no Tasks framework: Django 6, or Django 4.2+ with django-tasks",
)

from django.contrib.auth.models import User
from django.test import Client

from tasktable import TaskStatus
from tasktable.contrib.django import TaskTableBackend, get_table
from tests.contrib.docs_code import snippets

from .conftest import ENV, Run

Worker = Callable[..., Run]


@pytest.fixture
def db(sqlite_database: str) -> Any:
    """The docs' views use the default database."""
    from .conftest import clean

    clean("default")
    yield "default"
    clean("default")


def notices(client: Client) -> list[str]:
    text: str = client.get("/messages/").content.decode()
    return [line for line in text.splitlines() if line]


def test_settings_block_configures_the_backend() -> None:
    [block] = snippets("docs/django.md")
    namespace: dict[str, Any] = {"INSTALLED_APPS": ["django.contrib.auth"]}
    exec(compile(block.code, "docs/django.md", "exec"), namespace)
    assert "tasktable.contrib.django" in namespace["INSTALLED_APPS"]
    conf = namespace["TASKS"]["default"]
    backend = TaskTableBackend("docs", conf)
    assert backend.queues == {"default", "emails"}
    assert backend.joins_transactions and backend.database == "default"


def test_signup_sends_the_welcome_email_from_the_worker(db: str, run_worker: Worker) -> None:
    from myshop.tasks import send_welcome

    client = Client()
    response = client.post("/signup/", {"username": "ada", "email": "ada@example.test"})
    assert response.status_code == 302
    user = User.objects.get(username="ada")
    [task] = get_table().list().tasks
    assert (task.name, task.queue, task.args["args"]) == ("send_welcome", "emails", [user.pk])
    [notice] = notices(client)
    assert notice == (
        f"info|tasktable|&quot;send_welcome&quot; will run in the background (task #{task.id}). "
        f'<a href="http://tasks.example.test/admin/tasks/{task.id}">View task #{task.id}</a>'
    )

    run_worker("default")
    result = send_welcome.get_result(str(task.id))
    assert result.return_value == "ada@example.test"
    [mail] = Path(ENV["TASKTABLE_TEST_DJANGO_MAIL"]).iterdir()
    assert "Hello ada." in mail.read_text()
    mail.unlink()


def test_failed_signup_leaves_neither_user_nor_task(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import myshop.views

    def broken(request: Any, result: Any) -> None:
        raise RuntimeError("the page failed after enqueue()")

    monkeypatch.setattr(myshop.views, "add_background_notice", broken)
    client = Client(raise_request_exception=False)
    response = client.post("/signup/", {"username": "bob", "email": "bob@example.test"})
    assert response.status_code == 500
    assert not User.objects.filter(username="bob").exists()
    assert get_table().count() == 0


def test_mass_action_runs_inline_below_the_threshold(db: str) -> None:
    ids = [User.objects.create_user(f"u{i}").pk for i in range(3)]
    client = Client()
    client.post("/users/deactivate/", {"user_id": ids})
    assert notices(client) == ["success||3 users deactivated."]
    assert not User.objects.filter(is_active=True).exists()
    assert get_table().count() == 0


def test_mass_action_goes_to_the_background_above_it(db: str, run_worker: Worker) -> None:
    ids = [User.objects.create_user(f"u{i}").pk for i in range(21)]
    client = Client()
    client.post("/users/deactivate/", {"user_id": ids})
    [task] = get_table().list().tasks
    assert task.priority == 10
    [notice] = notices(client)
    assert "&quot;deactivate_users&quot; will run in the background" in notice
    assert User.objects.filter(is_active=True).count() == 21

    run_worker("default")
    done = get_table().get(task.id)
    assert done.status is TaskStatus.SUCCESS
    assert done.progress is not None and (done.progress.done, done.progress.total) == (21, 21)
    assert [(m.level, m.text) for m in done.messages] == [("success", "21 users deactivated.")]
    assert not User.objects.filter(is_active=True).exists()


def test_served_by_django_runserver(
    db: str, django_env: dict[str, str], run_worker: Worker
) -> None:
    from urllib.parse import urlencode

    from tests.contrib.conftest import free_port, http, serve, stop

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "django", "runserver", f"127.0.0.1:{port}", "--noreload"]
    server = serve(command, django_env, base + "/messages/")
    try:
        form = urlencode({"username": "lin", "email": "lin@example.test"}).encode()
        status, _ = http(
            "POST", base + "/signup/", form, **{"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert status == 302
    finally:
        stop(server)
    [task] = get_table().list().tasks
    run_worker("default")
    assert get_table().get(task.id).status is TaskStatus.SUCCESS
    mails = list(Path(ENV["TASKTABLE_TEST_DJANGO_MAIL"]).iterdir())
    assert any("Hello lin." in m.read_text() for m in mails)
    for mail in mails:
        mail.unlink()
