"""The rest of the Django integration: views in a transaction, the notice, the CLI and
management command, system checks, migrations, and a separate tasktable database."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

pytest.importorskip("django", reason="Django is not installed (pip install -e '.[dev]')")
pytest.importorskip(
    "tasktable.contrib.django._compat",
    reason="no Tasks framework: Django 6, or Django 4.2+ with django-tasks",
)

from django.contrib.messages import get_messages
from django.contrib.messages.storage.fallback import FallbackStorage
from django.contrib.sessions.backends.db import SessionStore
from django.core.exceptions import ImproperlyConfigured
from django.core.management import ManagementUtility, call_command
from django.db import transaction
from django.test import Client, RequestFactory, override_settings
from sqlalchemy import make_url

from tasktable.contrib.django import TaskTableBackend, add_background_notice, get_table
from tasktable.contrib.django._compat import READY, SUCCESSFUL, task_backends
from tasktable.contrib.django.connection import django_database_url, mysql_url
from tasktable.storage.migrate import load_migrations
from tests.contrib.django_project import tasks
from tests.contrib.django_project.notes.models import Note

from .conftest import ENV, Run

Worker = Callable[..., Run]


def test_view_transaction_commits_note_and_task_together(alias: str, run_worker: Worker) -> None:
    client = Client()
    response = client.post("/notes/", {"alias": alias, "text": "hello"})
    assert response.status_code == 200
    task_id = response.content.decode()
    run_worker(alias)
    result = task_backends[alias].get_result(task_id)
    assert result.status == SUCCESSFUL
    assert result.return_value == 1


def test_view_that_fails_rolls_the_task_back(alias: str) -> None:
    client = Client(raise_request_exception=False)
    response = client.post("/notes/", {"alias": alias, "text": "hello", "fail": "1"})
    assert response.status_code == 500
    assert Note.objects.using(alias).count() == 0
    assert get_table(alias).count() == 0


def _request() -> Any:
    request = RequestFactory().get("/")
    request.session = SessionStore()
    request._messages = FallbackStorage(request)
    return request


def test_notice_for_a_tasktable_task_escapes_its_name(alias: str) -> None:
    table = get_table(alias)
    task = table.enqueue("tests.support.handlers:Echo", {}, name="<b>Export</b> & co")
    request = _request()
    notice = add_background_notice(request, task, backend=alias)
    [message] = list(get_messages(request))
    assert message.extra_tags == "tasktable"
    assert "&lt;b&gt;Export&lt;/b&gt; &amp; co" in message.message
    assert "<b>" not in message.message
    assert notice.task_id == task.id and notice.url.endswith(f"/tasks/{task.id}")


def test_notice_of_a_django_result_uses_its_backend(alias: str) -> None:
    result = tasks.add.using(backend=alias).enqueue(1, 2)
    request = _request()
    notice = add_background_notice(request, result)
    assert notice.task_id == int(result.id)
    assert notice.task_name == "add"
    expected = "http://tasks.example.test/admin" if alias == "default" else "http://127.0.0.1:8080"
    assert notice.url == f"{expected}/tasks/{result.id}"


def test_management_command_runs_the_tasktable_cli(
    alias: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = tasks.add.using(backend=alias).enqueue(1, 2)
    call_command("tasktable", "list", "--json", backend=alias)
    listed = json.loads(capsys.readouterr().out)
    assert [t["id"] for t in listed["tasks"]] == [int(result.id)]

    utility = ManagementUtility(["manage.py", "tasktable", "--backend", alias, "show", result.id])
    with pytest.raises(SystemExit) as exited:
        utility.execute()
    assert exited.value.code == 0
    assert "add" in capsys.readouterr().out


def test_cli_module_explains_bad_use(tasktable_django: Callable[..., Run]) -> None:
    assert "usage: python -m tasktable.contrib.django" in tasktable_django("--help").stdout
    unknown = tasktable_django("list", backend="nope")
    assert unknown.code == 2
    assert "no task backend 'nope'" in unknown.stderr
    no_settings = tasktable_django("list", extra_env={"DJANGO_SETTINGS_MODULE": ""})
    assert no_settings.code == 2
    assert "DJANGO_SETTINGS_MODULE" in no_settings.stderr


def test_migrate_created_every_tasktable_migration(alias: str) -> None:
    table = get_table(alias)
    table.storage.check_schema()  # raises when a migration is missing
    assert table.migrate() == []  # idempotent
    assert len(load_migrations("sqlite")) >= 1


def test_worker_url_points_at_the_django_database(alias: str) -> None:
    url = django_database_url(alias)
    if alias == "default":
        assert url == f"sqlite:///{ENV['TASKTABLE_TEST_DJANGO_SQLITE']}"
    elif alias == "mariadb":  # the charset of OPTIONS comes along
        assert url == f"{ENV['TASKTABLE_TEST_DJANGO_MYSQL']}?charset=utf8mb4"
    else:
        assert url == ENV["TASKTABLE_TEST_DJANGO_PG"].replace(
            "postgresql://", "postgresql+psycopg://"
        )


def test_system_checks() -> None:
    call_command("check")  # the project's configuration passes
    backend = TaskTableBackend("broken", {"OPTIONS": {"DATABASE": "missing"}})
    [error] = backend.check()
    assert error.id == "tasktable.E001" and "no database 'missing'" in error.msg
    with override_settings(INSTALLED_APPS=["django.contrib.contenttypes"]):
        [warning] = TaskTableBackend("other", {}).check()
    assert warning.id == "tasktable.W001"


def test_system_check_warns_of_an_isolation_other_than_read_committed(
    mariadb_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import connections

    backend = task_backends[mariadb_database]
    assert backend.check() == []  # Django's default on MySQL/MariaDB: READ COMMITTED
    options = connections[mariadb_database].settings_dict["OPTIONS"]
    for level, shown in (("repeatable read", "REPEATABLE READ"), (None, "THE SERVER DEFAULT")):
        monkeypatch.setitem(options, "isolation_level", level)
        [warning] = backend.check()
        assert warning.id == "tasktable.W002"
        assert shown in warning.msg and "read committed" in warning.hint


def test_worker_url_of_mysql_options() -> None:
    conf = {
        "NAME": "shop",
        "USER": "app",
        "PASSWORD": "p@ss",
        "HOST": "/run/mysqld/mysqld.sock",
        "PORT": "",
        "OPTIONS": {
            "charset": "utf8mb4",
            "isolation_level": "read committed",  # not a driver option: stays out
            "init_command": "SET sql_mode='STRICT_TRANS_TABLES'",
            "ssl": {"ca": "/etc/ca.pem", "check_hostname": False},
        },
    }
    url = make_url(mysql_url(conf))
    assert (url.drivername, url.username, url.password) == ("mysql+pymysql", "app", "p@ss")
    assert (url.host, url.port, url.database) == (None, None, "shop")
    assert dict(url.query) == {
        "charset": "utf8mb4",
        "unix_socket": "/run/mysqld/mysqld.sock",
        "init_command": "SET sql_mode='STRICT_TRANS_TABLES'",
        "ssl_ca": "/etc/ca.pem",
        "ssl_check_hostname": "False",
    }
    tcp = make_url(mysql_url({"NAME": "shop", "HOST": "db", "PORT": "3307", "OPTIONS": {}}))
    assert (tcp.host, tcp.port, dict(tcp.query)) == ("db", 3307, {})


def test_bad_options_fail_loudly() -> None:
    with pytest.raises(ImproperlyConfigured, match="unknown OPTIONS DATABSE"):
        TaskTableBackend("typo", {"OPTIONS": {"DATABSE": "default"}})
    with pytest.raises(ImproperlyConfigured, match="not both"):
        TaskTableBackend("both", {"OPTIONS": {"DATABASE": "default", "URL": "sqlite:///x.db"}})


def test_separate_database_commits_on_its_own(sqlite_database: str, run_worker: Worker) -> None:
    backend = task_backends["separate"]
    assert not backend.joins_transactions
    assert backend.worker_url == ENV["TASKTABLE_TEST_DJANGO_SEPARATE"]
    with transaction.atomic():
        result = tasks.add.using(backend="separate").enqueue(5, 6)
        transaction.set_rollback(True)
    # Another database cannot share Django's transaction: the task stays.
    assert backend.get_result(result.id).status == READY
    run_worker("separate")
    result.refresh()
    assert result.return_value == 11
    backend.table.delete(int(result.id))
