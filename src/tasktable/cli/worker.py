"""``tasktable worker`` and ``tasktable crontab``."""

from __future__ import annotations

import shlex
import sys

import click

from ..core.durations import parse_duration
from ..logs import setup_logging
from .common import CliState, command_options, pass_state
from .main import cli


@cli.command()
@click.option(
    "--slots",
    type=click.IntRange(1, 256),
    default=5,
    show_default=True,
    envvar="TASKTABLE_SLOTS",
    help="Tasks run at once (the seed's limit is 5).",
)
@click.option(
    "--queue",
    "queues",
    multiple=True,
    envvar="TASKTABLE_QUEUES",
    help="Queue to serve (repeat for several; default: all).",
)
@click.option("--burst", is_flag=True, help="Exit when nothing is due (cron mode).")
@click.option(
    "--max-seconds",
    type=float,
    default=None,
    help="Stop claiming after this many seconds; exit when running tasks end.",
)
@click.option(
    "--grace",
    default="25s",
    show_default=True,
    envvar="TASKTABLE_GRACE",
    help="On SIGTERM, how long running tasks may take to finish.",
)
@command_options
@pass_state
def worker(
    state: CliState,
    slots: int,
    queues: tuple[str, ...],
    burst: bool,
    max_seconds: float | None,
    grace: str,
) -> int:
    """Run tasks, SLOTS at a time, until stopped (SIGTERM/SIGINT finish gracefully)."""
    from ..worker.supervisor import Worker

    table = state.table()
    setup_logging(table.settings.log_file, verbose=state.verbose)
    queue_list = [q for value in queues for q in value.split(",") if q]
    run = Worker(
        table,
        slots=slots,
        queues=queue_list,
        burst=burst,
        max_seconds=max_seconds,
        grace=parse_duration(grace).total_seconds(),
    )
    return run.run()


@cli.command()
@click.option("--slots", type=click.IntRange(1, 256), default=5, show_default=True)
@click.option(
    "--every",
    type=click.IntRange(1, 59),
    default=1,
    show_default=True,
    help="Minutes between runs.",
)
@click.option("--queue", "queues", multiple=True)
@click.option("--workdir", default=None, help="Directory to run in (default: the current one).")
@command_options
@pass_state
def crontab(
    state: CliState, slots: int, every: int, queues: tuple[str, ...], workdir: str | None
) -> None:
    """Print crontab lines that run burst workers (the seed's cron group)."""
    import os

    exe = shlex.quote(sys.argv[0] if sys.argv[0].endswith("tasktable") else "tasktable")
    cwd = shlex.quote(workdir or os.getcwd())
    db = f" --db {shlex.quote(state.database_url)}" if state.database_url else ""
    queue_args = "".join(f" --queue {shlex.quote(q)}" for q in queues)
    schedule = "*" if every == 1 else f"*/{every}"
    # --max-seconds keeps runs from piling up: each stops claiming before the next starts.
    limit = every * 60 - 5
    click.echo("# tasktable: run due background tasks (crontab -e, then paste)")
    click.echo(
        f"{schedule} * * * * cd {cwd} && {exe}{db} worker --burst --slots {slots}"
        f"{queue_args} --max-seconds {limit} >> var/log/tasktable/cron.log 2>&1"
    )
    click.echo(f"17 3 * * * cd {cwd} && {exe}{db} clean >> var/log/tasktable/cron.log 2>&1")
