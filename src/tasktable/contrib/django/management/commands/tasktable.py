"""``python manage.py tasktable [--backend ALIAS] COMMAND [ARGS]...``: the tasktable CLI
(worker, list, show, retry, stats, ...) on this project's task backend.

The arguments go to tasktable unparsed by Django (so ``-v`` is tasktable's).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError  # type: ignore[import-untyped]

from ...cli import USAGE, run, split_backend


class Command(BaseCommand):  # type: ignore[misc]  # Django is untyped here
    help = (
        "Run a tasktable command (worker, list, show, retry, ...) on the task backend's database."
    )

    def run_from_argv(self, argv: list[str]) -> None:
        args = argv[2:]
        if not args or args[0] in ("-h", "--help"):
            self.stdout.write(
                USAGE.replace("python -m tasktable.contrib.django", "manage.py tasktable")
            )
            sys.exit(0 if args else 2)
        backend, rest = split_backend(args)
        sys.exit(run(backend, rest))

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--backend", default="default")
        parser.add_argument("arguments", nargs=argparse.REMAINDER)

    def handle(self, *args: Any, **options: Any) -> None:
        code = run(options["backend"], [*args, *options["arguments"]])
        if code:
            raise CommandError(f"tasktable exited with code {code}.", returncode=code)
