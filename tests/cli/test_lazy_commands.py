"""The CLI imports a command's module only when that command runs: the map is complete and
right, and a worker process never loads the demo's Rich screens or the password hasher."""

from __future__ import annotations

import importlib
import subprocess
import sys
import tempfile
from pathlib import Path

import click

from tasktable.cli.main import COMMANDS, cli


def test_every_command_is_mapped_to_the_module_that_defines_it() -> None:
    for module in set(COMMANDS.values()):
        importlib.import_module(f"tasktable.cli.{module}")
    assert set(cli.commands) == set(COMMANDS)
    for name, command in cli.commands.items():
        callback = command.callback
        if isinstance(command, click.Group):  # a group's own callback is a no-op of its module
            callback = next(iter(command.commands.values())).callback
        assert callback is not None
        assert callback.__module__ == f"tasktable.cli.{COMMANDS[name]}", name


def test_a_worker_command_does_not_import_the_other_commands_modules() -> None:
    code = (
        "import sys\n"
        "from tasktable.cli.main import main\n"
        "assert main(['worker', '--help']) == 0\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('rich', 'argon2')\n"
        "               or m in ('tasktable.cli.demo', 'tasktable.cli.identity'))\n"
        "print(heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout


def test_the_worker_starts_its_fork_server_before_it_imports_sqlalchemy() -> None:
    """The slots' fork server boots on the other core while the worker imports SQLAlchemy
    and its driver: the CLI itself does not import them, and ``worker`` starts the fork
    server first (each slot asks again later and gets the same one; a thread-slot worker
    starts none)."""
    code = (
        "import sys\n"
        "import tasktable.worker.runners as runners\n"
        "seen = []\n"
        "real = runners.slot_context\n"
        "def spy():\n"
        "    seen.append('sqlalchemy' in sys.modules)\n"
        "    return real()\n"
        "runners.slot_context = spy\n"
        "from tasktable.cli.main import main\n"
        "loaded = 'sqlalchemy' in sys.modules\n"
        "code = main(['--db', 'sqlite:///' + sys.argv[1], 'worker', '--burst', *sys.argv[2:]])\n"
        "print(loaded, seen[:1], code)\n"
    )
    with tempfile.TemporaryDirectory() as folder:
        db = str(Path(folder) / "t.sqlite3")
        process = subprocess.run(
            [sys.executable, "-c", code, db], capture_output=True, text=True, timeout=120
        )
        thread = subprocess.run(
            [sys.executable, "-c", code, db, "--mode", "thread"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert process.stdout.strip().splitlines()[-1] == "False [False] 0", process.stderr
    # A thread-slot worker never calls it.
    assert thread.stdout.strip().splitlines()[-1] == "False [] 0", thread.stderr
