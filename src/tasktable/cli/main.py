"""``tasktable``: the CLI entry point. ``main(argv) -> int`` is callable from tests.

Every command takes ``--db URL`` (else ``TASKTABLE_DATABASE_URL``, else the
SQLite default). Errors are one sentence on stderr and a non-zero exit code;
``-v`` adds the traceback.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Sequence

import click

from ..errors import TaskTableError
from .common import CliState, pass_state

EXIT_ERROR = 1
EXIT_USAGE = 2


# Which module defines each command. A command's module is imported when that command runs
# (or when --help lists them all), so `tasktable worker` does not load the demo's Rich
# screens or the password hasher: a worker's resident memory is an issue-6 target.
COMMANDS = {
    "cancel": "tasks",
    "clean": "tasks",
    "crontab": "worker",
    "delete": "tasks",
    "demo": "demo",
    "enqueue": "tasks",
    "list": "tasks",
    "migrate": "schema",
    "retry": "tasks",
    "serve": "serve",
    "show": "tasks",
    "stats": "tasks",
    "token": "identity",
    "user": "identity",
    "worker": "worker",
}


class LazyGroup(click.Group):
    """A group whose commands are registered by importing their module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if module is not None and cmd_name not in self.commands:
            importlib.import_module(f"{__package__}.{module}")
        return super().get_command(ctx, cmd_name)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--db",
    "database_url",
    envvar="TASKTABLE_DATABASE_URL",
    default=None,
    metavar="URL",
    help="Database URL [env TASKTABLE_DATABASE_URL; default sqlite:///var/tasktable.sqlite3].",
)
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    envvar="TASKTABLE_VERBOSE",
    help="Show debug logs and tracebacks.",
)
@click.version_option(package_name="tasktable")
@click.pass_context
def cli(ctx: click.Context, database_url: str | None, verbose: bool) -> None:
    """Durable background tasks kept in a database table."""
    state = ctx.ensure_object(CliState)
    state.database_url = database_url
    state.verbose = state.verbose or verbose
    ctx.call_on_close(state.close)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code instead of exiting."""
    # Like `python -m`, handlers in the current directory's packages are importable
    # (`tasktable enqueue myapp.tasks:Export` from the project root).
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    args = list(sys.argv[1:] if argv is None else argv)
    state = CliState()
    try:
        result = cli.main(args=args, prog_name="tasktable", standalone_mode=False, obj=state)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return EXIT_ERROR
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except TaskTableError as exc:
        _report(str(exc), verbose=_verbose(state, args))
        return EXIT_ERROR
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    except Exception as exc:  # a bug: still one sentence, traceback with -v
        _report(
            f"unexpected {type(exc).__name__}: {exc} (run again with -v for details)",
            verbose=_verbose(state, args),
        )
        return EXIT_ERROR
    return result if isinstance(result, int) else 0


def _verbose(state: CliState, args: Sequence[str]) -> bool:
    """-v anywhere, or TASKTABLE_VERBOSE, even when parsing stopped before the flag was read."""
    env = os.environ.get("TASKTABLE_VERBOSE", "").strip().lower()
    return state.verbose or "-v" in args or "--verbose" in args or env in ("1", "true", "yes", "on")


def _report(message: str, *, verbose: bool) -> None:
    """The error as one sentence on one line (a driver's message may span several)."""
    if verbose:
        traceback.print_exc()
    text = " ".join(line.strip() for line in message.splitlines() if line.strip())
    if not text.endswith((".", "!", "?")):
        text += "."
    click.echo(f"Error: {text}", err=True)


def run() -> None:
    """The console-script entry point."""
    sys.exit(main())


__all__ = ["cli", "main", "pass_state", "run"]
