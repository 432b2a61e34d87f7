"""Run the tasktable CLI for a Django project: Django set up, ``--db`` from the backend.

``python -m tasktable.contrib.django [--backend ALIAS] COMMAND [ARGS]...`` (with
``DJANGO_SETTINGS_MODULE`` set) and ``python manage.py tasktable COMMAND ...``
are ``tasktable COMMAND ...`` on the database of the TaskTableBackend named
``ALIAS`` in ``TASKS`` (default ``default``), with Django set up so that the
worker can run ``@task`` functions. A ``--db`` given after the command wins.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

USAGE = (
    "usage: python -m tasktable.contrib.django [--backend ALIAS] COMMAND [ARGS]...\n"
    "Runs `tasktable COMMAND` (worker, list, show, retry, stats, ...) on the database of the\n"
    "TaskTableBackend ALIAS of settings.TASKS (default: default), with Django set up.\n"
    "Needs DJANGO_SETTINGS_MODULE. `... COMMAND --help` shows a command's options."
)


def split_backend(argv: Sequence[str]) -> tuple[str, list[str]]:
    """Take a leading ``--backend ALIAS`` (or ``--backend=ALIAS``) off the arguments."""
    args = list(argv)
    if args and args[0].startswith("--backend="):
        return args[0].partition("=")[2], args[1:]
    if len(args) >= 2 and args[0] == "--backend":
        return args[1], args[2:]
    return "default", args


def run(backend: str, argv: Sequence[str]) -> int:
    """``tasktable ARGV`` on the database of ``backend``; Django must be set up."""
    from ...cli.main import main
    from ._compat import task_backends
    from .backend import TaskTableBackend

    if backend not in task_backends.settings:
        sys.stderr.write(f"Error: there is no task backend {backend!r} in settings.TASKS.\n")
        return 2
    chosen = task_backends[backend]
    if not isinstance(chosen, TaskTableBackend):
        sys.stderr.write(f"Error: task backend {backend!r} is not a TaskTableBackend.\n")
        return 2
    return main(["--db", chosen.worker_url, *argv])


def main(argv: Sequence[str] | None = None) -> int:
    backend, rest = split_backend(sys.argv[1:] if argv is None else argv)
    if not rest or rest[0] in ("-h", "--help"):
        sys.stdout.write(USAGE + "\n")
        return 0 if rest else 2
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        sys.stderr.write(
            "Error: set DJANGO_SETTINGS_MODULE (e.g. mysite.settings) to run tasktable "
            "for a Django project, or use: python manage.py tasktable ...\n"
        )
        return 2
    import django  # type: ignore[import-untyped]

    # Like manage.py: the project in the current directory is importable.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    django.setup()
    return run(backend, rest)
