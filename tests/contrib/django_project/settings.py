"""Settings of the small Django project the Django integration tests run against.

Databases come from the environment so that the test process and the worker
subprocesses it starts share them:

- ``TASKTABLE_TEST_DJANGO_SQLITE``: path of the SQLite database (alias ``default``);
- ``TASKTABLE_TEST_DJANGO_PG``: a PostgreSQL URL (alias ``pg``), when available;
- ``TASKTABLE_TEST_DJANGO_MYSQL``: a MariaDB URL (alias ``mariadb``), when available;
  Django's MySQL backend then runs on mysqlclient, or on PyMySQL when that is
  absent (``pymysql.install_as_MySQLdb()``, as docs/django.md tells users);
- ``TASKTABLE_TEST_DJANGO_SEPARATE``: a tasktable URL for the backend that keeps
  its tasks outside Django's databases (``OPTIONS['URL']``);
- ``TASKTABLE_TEST_DJANGO_MAIL``: the folder emails are written to.
"""

from __future__ import annotations

import importlib.util
import os

import django
from sqlalchemy import make_url

SECRET_KEY = "tasktable-tests-only"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "tests.contrib.django_project.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DJANGO_6 = importlib.util.find_spec("django.tasks") is not None

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    *([] if DJANGO_6 else ["django_tasks"]),
    "tasktable.contrib.django",
    "tests.contrib.django_project.notes",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.contrib.messages.context_processors.messages"]},
    }
]

_MAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
_MAIL_DIR = os.environ.get("TASKTABLE_TEST_DJANGO_MAIL", "var/django-mail")
if django.VERSION >= (6, 1):  # EMAIL_BACKEND and EMAIL_FILE_PATH are deprecated there
    MAILERS = {"default": {"BACKEND": _MAIL_BACKEND, "OPTIONS": {"file_path": _MAIL_DIR}}}
else:
    EMAIL_BACKEND = _MAIL_BACKEND
    EMAIL_FILE_PATH = _MAIL_DIR

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("TASKTABLE_TEST_DJANGO_SQLITE", "var/django-tests.sqlite3"),
    }
}

TASKS = {
    "default": {
        "BACKEND": "tasktable.contrib.django.TaskTableBackend",
        "QUEUES": ["default", "emails"],
        "OPTIONS": {"DASHBOARD_URL": "http://tasks.example.test/admin"},
    },
}

_pg = os.environ.get("TASKTABLE_TEST_DJANGO_PG")
if _pg:
    url = make_url(_pg)
    DATABASES["pg"] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": url.database,
        "USER": url.username or "",
        "PASSWORD": url.password or "",
        "HOST": url.host or "",
        "PORT": str(url.port or ""),
    }
    TASKS["pg"] = {
        "BACKEND": "tasktable.contrib.django.TaskTableBackend",
        "QUEUES": ["default", "emails"],
        "OPTIONS": {"DATABASE": "pg"},
    }

_mysql = os.environ.get("TASKTABLE_TEST_DJANGO_MYSQL")
if _mysql:
    if importlib.util.find_spec("MySQLdb") is None:  # no mysqlclient: PyMySQL stands in
        import pymysql

        if pymysql.version_info < (2, 2, 1):  # an older PyMySQL: Django 6 wants 2.2.1+
            pymysql.version_info = (2, 2, 1, "final", 0)  # the workaround docs/django.md gives
        pymysql.install_as_MySQLdb()
    url = make_url(_mysql)
    DATABASES["mariadb"] = {
        "ENGINE": "django.db.backends.mysql",
        "NAME": url.database,
        "USER": url.username or "",
        "PASSWORD": url.password or "",
        "HOST": url.host or "",
        "PORT": str(url.port or ""),
        "OPTIONS": {"charset": "utf8mb4"},
    }
    TASKS["mariadb"] = {
        "BACKEND": "tasktable.contrib.django.TaskTableBackend",
        "QUEUES": ["default", "emails"],
        "OPTIONS": {"DATABASE": "mariadb"},
    }

_separate = os.environ.get("TASKTABLE_TEST_DJANGO_SEPARATE")
if _separate:
    TASKS["separate"] = {
        "BACKEND": "tasktable.contrib.django.TaskTableBackend",
        "OPTIONS": {"URL": _separate},
    }
