"""``tasktable worker`` and ``tasktable crontab``."""

from __future__ import annotations

import os
import shlex
import shutil
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
    help="Queue to serve (repeat for several; NAME=WEIGHT to weight them; default: all).",
)
@click.option(
    "--ordered",
    is_flag=True,
    help="Claim from the --queue options in the order given (later queues get the slots "
    "earlier ones leave free). Or weight them: --queue mail=3 --queue reports=1.",
)
@click.option("--burst", is_flag=True, help="Exit when nothing is due (cron mode).")
@click.option(
    "--max-seconds",
    type=click.FloatRange(min=0),
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
@click.option(
    "--mode",
    type=click.Choice(["process", "thread"]),
    default="process",
    show_default=True,
    envvar="TASKTABLE_WORKER_MODE",
    help="Run each slot in a child process (timeouts and crashes contained) or a thread "
    "(lighter, for I/O-bound handlers; a hung thread cannot be stopped).",
)
@click.option(
    "--prefetch",
    type=click.IntRange(0, 1000),
    default=None,
    envvar="TASKTABLE_PREFETCH",
    help="At most this many tasks claimed ahead of a free slot, while runs are short "
    "(only what the slots should start within 50 ms); 0 turns it off. Default: 20 per slot.",
)
@click.option(
    "--periodic",
    "periodic_spec",
    default=None,
    envvar="TASKTABLE_PERIODIC",
    metavar="FILE|MODULE:ATTR",
    help="Periodic tasks to enqueue on cron ticks: a .toml/.json file or a module:attribute.",
)
@command_options
@pass_state
def worker(
    state: CliState,
    slots: int,
    queues: tuple[str, ...],
    ordered: bool,
    burst: bool,
    max_seconds: float | None,
    grace: str,
    mode: str,
    prefetch: int | None,
    periodic_spec: str | None,
) -> int:
    """Run tasks, SLOTS at a time, until stopped (SIGTERM/SIGINT finish gracefully)."""
    grace_seconds = parse_duration(grace).total_seconds()  # bad input fails before any I/O
    from ..worker.queues import QueuePlan

    plan = QueuePlan.parse(queues, ordered=ordered)  # NAME or NAME=WEIGHT; bad input fails here
    if mode != "thread":
        # The slots' fork server boots (a fresh interpreter importing the slot's code) on
        # the other core while this process imports SQLAlchemy and the driver and connects:
        # the first tasks start about 0.1 s sooner. It ends with this process.
        from ..worker.runners import slot_context

        slot_context()
    from ..worker.periodic import load_periodic
    from ..worker.supervisor import Worker

    periodic = load_periodic(periodic_spec) if periodic_spec else []

    table = state.table()
    setup_logging(table.settings.log_file, verbose=state.verbose)
    run = Worker(
        table,
        slots=slots,
        queues=plan.names,
        queue_plan=plan,
        burst=burst,
        max_seconds=max_seconds,
        grace=grace_seconds,
        mode="thread" if mode == "thread" else "process",
        verbose=state.verbose,
        periodic=periodic,
        prefetch=prefetch,
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
@click.option("--queue", "queues", multiple=True, help="As for worker: NAME or NAME=WEIGHT.")
@click.option("--workdir", default=None, help="Directory to run in (default: the current one).")
@command_options
@pass_state
def crontab(
    state: CliState, slots: int, every: int, queues: tuple[str, ...], workdir: str | None
) -> None:
    """Print crontab lines that run burst workers (the seed's cron group)."""
    from ..worker.queues import QueuePlan

    QueuePlan.parse(queues)  # the worker would refuse them every minute; refuse them now
    cwd = shlex.quote(os.path.abspath(workdir or os.getcwd()))
    exe = shlex.quote(_executable())
    db = f" --db {shlex.quote(state.database_url)}" if state.database_url else ""
    queue_args = "".join(f" --queue {shlex.quote(q)}" for q in queues)
    schedule = "*" if every == 1 else f"*/{every}"
    # --max-seconds keeps runs from piling up: each stops claiming before the next starts.
    limit = every * 60 - 5
    # The shell opens the redirection before running anything: the folder must exist.
    prefix = f"cd {cwd} && mkdir -p var/log/tasktable && {exe}{db}"
    log = ">> var/log/tasktable/cron.log 2>&1"
    click.echo("# tasktable: run due background tasks (crontab -e, then paste)")
    click.echo(
        _cron_escape(
            f"{schedule} * * * * {prefix} worker --burst --slots {slots}"
            f"{queue_args} --max-seconds {limit} {log}"
        )
    )
    click.echo(_cron_escape(f"17 3 * * * {prefix} clean {log}"))


def _executable() -> str:
    """An absolute path to this tasktable: cron runs with a minimal PATH."""
    if os.path.basename(sys.argv[0]) == "tasktable":
        return os.path.abspath(sys.argv[0])
    return shutil.which("tasktable") or "tasktable"


def _cron_escape(line: str) -> str:
    """cron turns an unescaped % in the command into a newline (a URL-encoded password has %)."""
    return line.replace("%", "\\%")
