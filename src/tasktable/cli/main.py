"""``tasktable``: the CLI entry point. ``main(argv) -> int`` is callable from tests.

Every command takes ``--db URL`` (else ``TASKTABLE_DATABASE_URL``, else the
SQLite default). Errors are one sentence on stderr and a non-zero exit code;
``-v`` adds the traceback.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence

import click

from ..errors import TaskTableError
from .common import CliState, pass_state

EXIT_ERROR = 1
EXIT_USAGE = 2


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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


def _register() -> None:
    from . import demo, identity, schema, serve, tasks, worker  # noqa: F401 - each module adds its commands


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code instead of exiting."""
    _register()
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
