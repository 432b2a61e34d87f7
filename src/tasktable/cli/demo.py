"""``tasktable demo``: the seed's mass action, a CSV export and a failure, run by a real worker.

The demo enqueues example tasks on the configured database (the embedded SQLite
default unless ``--db``), runs a :class:`~tasktable.worker.supervisor.Worker`
in this process (in the main thread, so it handles Ctrl-C as ``tasktable
worker`` does), and shows the table live from a second thread until every demo
task is final. Tasks go to their own queue, ``demo``, so the demo's worker
never runs anyone else's tasks.
"""

from __future__ import annotations

import shlex
import shutil
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ..app import TaskTable
from ..core.status import TaskStatus
from ..core.task import Task
from ..demo.handlers import (
    ExportOrdersCsvHandler,
    FailingImportHandler,
    SetMassDeliveredHandler,
    orders_file,
)
from ..inline import InlineResult
from ..logs import setup_logging
from ..storage.engine import parse_url, safe_url
from .common import CliState, command_options, pass_state
from .main import cli

DEMO_QUEUE = "demo"
#: The seed's ``$massActionThreshold``: larger selections run in the background.
MASS_ACTION_THRESHOLD = 25
FIRST_SELECTION = 10  # the admin's first, small selection: it runs inline
SELECTION_SIZE = 40  # the other selections, as an admin grid page would send them
FIRST_ORDER_ID = 100001
SECONDS_PER_ORDER = 0.05  # slowed down so the progress bars can be watched
DEADLINE_SECONDS = 90.0  # the demo gives up (and says so) if tasks take longer
REFRESH_SECONDS = 0.25

_STATUS_STYLE = {
    TaskStatus.PENDING: "yellow",
    TaskStatus.RUNNING: "cyan",
    TaskStatus.SUCCESS: "green",
    TaskStatus.ERROR: "red",
    TaskStatus.CANCELLED: "dim",
}


@dataclass
class DemoRun:
    """The demo's tasks, as the watcher tracks them."""

    mass_ids: list[int]
    import_id: int
    export_id: int | None = None
    tasks: dict[int, Task] = field(default_factory=dict)
    timed_out: bool = False
    error: BaseException | None = None

    @property
    def ids(self) -> list[int]:
        extra = [self.export_id] if self.export_id is not None else []
        return [*self.mass_ids, self.import_id, *extra]

    @property
    def done(self) -> bool:
        return self.export_id is not None and all(
            i in self.tasks and self.tasks[i].status.is_final for i in self.ids
        )


@cli.command()
@click.option(
    "--slots",
    type=click.IntRange(1, 64),
    default=5,
    show_default=True,
    help="Tasks the demo's worker runs at once.",
)
@click.option(
    "--orders",
    type=click.IntRange(1, 1000),
    default=120,
    show_default=True,
    help="Orders the mass action marks delivered.",
)
@click.option(
    "--serve/--no-serve",
    default=True,
    show_default=True,
    help="Serve the dashboard on 127.0.0.1 (a fresh login is printed) while the demo "
    "runs and after it, until Ctrl-C.",
)
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.option("--serve-seconds", type=click.FloatRange(min=0), default=None, hidden=True)
@command_options
@pass_state
def demo(
    state: CliState,
    slots: int,
    orders: int,
    serve: bool,
    port: int,
    serve_seconds: float | None,
) -> int:
    """Run example tasks (the seed's mass action, a CSV export, a failure) with a worker."""
    from ..worker.supervisor import Worker

    table = state.table(auto_migrate=False)
    applied = table.migrate()
    # The failing task's traceback goes to the log file only, not to the terminal.
    setup_logging(table.settings.log_file, verbose=state.verbose, stderr=False)
    console = Console(highlight=False)
    _intro(console, table, applied, slots)
    dashboard = _serve_dashboard(console, table, port) if serve else None
    run = DemoRun(
        mass_ids=_mass_action(console, table, orders), import_id=_failing_import(console, table)
    )
    console.print(
        f"[bold]3. A worker with {slots} slot(s) runs them[/] (the export follows the mass action)."
    )
    worker = Worker(table, slots=slots, queues=[DEMO_QUEUE])
    worker_done = threading.Event()
    watcher = threading.Thread(
        target=_watch,
        args=(table, run, console, worker.request_stop, worker_done),
        name="tasktable-demo-watch",
        daemon=True,
    )
    started = time.monotonic()
    watcher.start()
    try:
        code = worker.run()
    finally:
        worker_done.set()
        watcher.join(timeout=10)
    result = _finish(console, state, table, run, code, time.monotonic() - started)
    if dashboard is not None:
        server, login = dashboard
        if run.done:
            console.print()
            console.print(f"[bold]Dashboard:[/] {server.url}  (log in as {login}; Ctrl-C stops it)")
            server.wait(serve_seconds)
        else:
            server.stop()
    return result


def _serve_dashboard(console: Console, table: TaskTable, port: int) -> tuple[Any, str] | None:
    """The dashboard in a thread on 127.0.0.1, with a fresh login; None if it cannot listen."""
    from ..dashboard.serving import DEMO_USER, ThreadedServer, fresh_login

    password = fresh_login(table)
    server = ThreadedServer(table, port=port)
    if not server.start():
        console.print(
            f"[yellow]The dashboard could not listen on 127.0.0.1:{port}; the demo runs "
            "without it (try --port).[/]"
        )
        return None
    login = f"user [bold]{DEMO_USER}[/], password [bold]{password}[/]"
    console.print(f"Dashboard: {server.url} ({login})")
    console.print()
    return server, login


def _intro(console: Console, table: TaskTable, applied: Sequence[int], slots: int) -> None:
    console.print("[bold]tasktable demo[/]: the seed's mass action, an export and a failure.")
    schema = "created" if applied else "up to date"
    console.print(f"Database: {_where(table)} (schema {schema})")
    console.print(f"Log file: {table.settings.log_file}")
    console.print(f"Worker:   {slots} slot(s), in this process, serving queue {DEMO_QUEUE!r}")
    console.print(f"Orders:   {orders_file()} (the demo's pretend shop)")
    console.print()


def _where(table: TaskTable) -> str:
    url = parse_url(table.url)
    if url.get_backend_name() == "sqlite" and url.database:
        return url.database
    return safe_url(table.url)


def _selections(orders: int) -> list[list[int]]:
    """The order ids in selections: a small first one, then pages of SELECTION_SIZE."""
    ids = list(range(FIRST_ORDER_ID, FIRST_ORDER_ID + orders))
    first, rest = ids[:FIRST_SELECTION], ids[FIRST_SELECTION:]
    pages = [rest[i : i + SELECTION_SIZE] for i in range(0, len(rest), SELECTION_SIZE)]
    return [first, *pages]


def _mass_action(console: Console, table: TaskTable, orders: int) -> list[int]:
    """The seed's controller: run inline at or under the threshold, else in the background."""
    name = SetMassDeliveredHandler.get_task_name()
    console.print(
        f'[bold]1. Mass action "{name}"[/] on {orders} order(s), '
        f"in {len(_selections(orders))} selection(s)."
    )
    console.print(
        f"   Like the seed: a selection of more than {MASS_ACTION_THRESHOLD} orders runs "
        "in the background, a smaller one inline, in the request."
    )
    ids: list[int] = []
    for order_ids in _selections(orders):
        count = f"{len(order_ids)} orders"
        result = table.run_or_enqueue(
            SetMassDeliveredHandler,
            {"order_ids": order_ids, "seconds_per_order": SECONDS_PER_ORDER},
            background=len(order_ids) > MASS_ACTION_THRESHOLD,
            queue=DEMO_QUEUE,
        )
        if isinstance(result, InlineResult):
            console.print(f"   {count:>10} -> ran inline: {_inline_summary(result)}")
        else:
            console.print(f"   {count:>10} -> notice: {table.notice(result).text}")
            ids.append(result.id)
    return ids


def _inline_summary(result: InlineResult) -> str:
    style = "green" if result.ok else "red"
    last = result.messages[-1].text if result.messages else ""
    return f"[{style}]{result.status.value}[/] - {escape(last)}"


def _failing_import(console: Console, table: TaskTable) -> int:
    task = table.enqueue(
        FailingImportHandler,
        {"feed_url": "https://supplier.invalid/feed.xml", "seconds_per_chunk": 0.4},
        queue=DEMO_QUEUE,
    )
    console.print(f'[bold]2. "{task.name}"[/], a task that fails on purpose.')
    console.print(f"   notice: {table.notice(task).text}")
    return task.id


def _enqueue_export(table: TaskTable, console: Console) -> int:
    task = table.enqueue(ExportOrdersCsvHandler, {"seconds_per_row": 0.01}, queue=DEMO_QUEUE)
    console.print(
        f"[bold]4. The mass action is done: export the orders.[/] {table.notice(task).text}"
    )
    return task.id


def _watch(
    table: TaskTable,
    run: DemoRun,
    console: Console,
    stop_worker: Callable[[], None],
    worker_done: threading.Event,
) -> None:
    """Show the demo's tasks live until all are final; then stop the worker."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    try:
        with Live(console=console, refresh_per_second=8, transient=False) as live:
            while True:
                run.tasks = {i: table.get(i) for i in run.ids}
                if run.export_id is None and all(
                    run.tasks[i].status.is_final for i in run.mass_ids
                ):
                    run.export_id = _enqueue_export(table, live.console)
                    continue
                live.update(_render(run), refresh=True)
                if run.done or worker_done.is_set():
                    break
                if time.monotonic() > deadline:
                    run.timed_out = True
                    break
                worker_done.wait(REFRESH_SECONDS)
    except BaseException as exc:  # shown by _finish; the worker must still stop
        run.error = exc
    finally:
        stop_worker()


def _render(run: DemoRun) -> RenderableType:
    grid = Table(box=box.SIMPLE_HEAD, title="Demo tasks", title_justify="left", show_edge=False)
    grid.add_column("id", justify="right")
    grid.add_column("task (last message)", ratio=1)
    grid.add_column("status")
    grid.add_column("progress", no_wrap=True)
    for task_id in run.ids:
        task = run.tasks.get(task_id)
        if task is not None:
            grid.add_row(
                str(task.id),
                _name_and_message(task),
                Text(task.status.value, style=_STATUS_STYLE[task.status]),
                _progress(task),
            )
    counts = {s: sum(t.status is s for t in run.tasks.values()) for s in TaskStatus}
    line = ", ".join(f"{n} {s.value}" for s, n in counts.items() if n)
    return Group(grid, Text(line, style="dim"))


def _name_and_message(task: Task) -> Text:
    text = Text(task.name)
    if task.messages:
        last = task.messages[-1]
        text.append("\n" + last.text, style="red" if last.level == "error" else "dim")
    return text


def _progress(task: Task) -> RenderableType:
    progress = task.progress
    if progress is None or not progress.total:
        return Text("")
    bar = Table.grid(padding=(0, 1))
    style = "red" if task.status is TaskStatus.ERROR else "green"
    bar.add_row(
        ProgressBar(
            total=progress.total,
            completed=progress.done,
            width=12,
            complete_style=style,
            finished_style=style,
        ),
        Text(f"{progress.done}/{progress.total}"),
    )
    return bar


def _finish(
    console: Console, state: CliState, table: TaskTable, run: DemoRun, code: int, seconds: float
) -> int:
    console.print()
    if run.error is not None:
        raise run.error
    problems = _problems(run)
    if run.timed_out:
        problems.insert(0, f"the demo tasks did not finish within {DEADLINE_SECONDS:.0f}s")
    elif not run.done:
        problems = [
            f"the worker stopped (exit code {code}) before the demo tasks finished; "
            "`tasktable worker --burst` runs the rest"
        ]
    _summary(console, table, run, seconds)
    _what_next(console, state, table, run)
    if problems:
        console.print(f"[red]The demo did not go as planned: {'; '.join(problems)}.[/]")
        return 1
    return 0


def _problems(run: DemoRun) -> list[str]:
    expected = {i: TaskStatus.SUCCESS for i in run.mass_ids}
    expected[run.import_id] = TaskStatus.ERROR
    if run.export_id is None:
        return ["the export was never enqueued"]
    expected[run.export_id] = TaskStatus.SUCCESS
    problems: list[str] = []
    for task_id, status in expected.items():
        task = run.tasks.get(task_id)
        actual = task.status.value if task else "unknown"
        if actual != status.value:
            problems.append(f"task #{task_id} is {actual}, not {status.value}")
    return problems


def _summary(console: Console, table: TaskTable, run: DemoRun, seconds: float) -> None:
    final = [t for t in run.tasks.values() if t.status.is_final]
    console.print(
        f"[bold]{'Done in' if run.done else 'Stopped after'} {seconds:.1f}s:[/] "
        f"{len(final)} background task(s) finished "
        f"({_count(final, TaskStatus.SUCCESS)} success, {_count(final, TaskStatus.ERROR)} error)."
    )
    delivered = sum(
        len(task.args["order_ids"])
        for task in (run.tasks[i] for i in run.mass_ids)
        if task.status is TaskStatus.SUCCESS
    )
    console.print(
        f"- {len(run.mass_ids)} mass-action task(s) marked {delivered} order(s) delivered "
        f"in the background; small selections ran inline. See {orders_file()}."
    )
    export = run.tasks.get(run.export_id) if run.export_id is not None else None
    if export is not None and export.files:
        file = export.files[0]
        link = export.action_link
        text = f'"{link.text}" -> {link.route_path}' if link else "none"
        console.print(
            f"- Export #{export.id} attached {file.filename} ({file.size} bytes); "
            f"action link {text}"
        )
        _, data = table.read_file(export.id, file.filename)
        for line in data.decode().splitlines()[:3]:
            console.print(f"    {line}", style="dim")
    failed = run.tasks.get(run.import_id)
    if failed is not None and failed.status is TaskStatus.ERROR:
        message = failed.messages[-1].text if failed.messages else ""
        console.print(
            f"- Import #{failed.id} failed on purpose: [red]{escape(message)}[/]\n"
            f"  Its traceback is kept on the task (tasktable show {failed.id}) "
            f"and written to {table.settings.log_file}."
        )


def _count(tasks: Sequence[Task], status: TaskStatus) -> int:
    return sum(t.status is status for t in tasks)


def _program() -> str:
    """How the user can type this command: ``tasktable`` if on PATH, else the path run."""
    argv0 = sys.argv[0]
    if Path(argv0).name != "tasktable":
        return "tasktable"
    found = shutil.which("tasktable")
    if found and Path(found).resolve() == Path(argv0).resolve():
        return "tasktable"
    path = Path(argv0)
    if path.is_absolute() and path.is_relative_to(Path.cwd()):
        path = path.relative_to(Path.cwd())
    return shlex.quote(str(path))


def _what_next(console: Console, state: CliState, table: TaskTable, run: DemoRun) -> None:
    db = ""
    if state.database_url:  # never echo a password: it would end up in scrollback and logs
        has_password = parse_url(state.database_url).password is not None
        db = " --db URL" if has_password else f" --db {shlex.quote(state.database_url)}"
    prog = _program() + db
    lines = [
        (f"{prog} list", "the table, newest first"),
        (f"{prog} show {run.import_id}", "one task: messages, error traceback, files"),
        (f"{prog} retry {run.import_id}", "queue the failed task again"),
        (f"{prog} worker --burst", "run what is due (e.g. that retry), then exit"),
        (f"{prog} stats", "counts by status and queue"),
        (f"{prog} serve", "the admin dashboard and the REST API"),
    ]
    console.print()
    console.print("[bold]What next[/]")
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column(style="dim")
    for cmd, what in lines:
        grid.add_row(f"  {cmd}", what)
    console.print(grid)
    console.print(f"  Database: {_where(table)}")
    console.print(f"  Log file: {table.settings.log_file}")
    console.print(f"  Run `{prog} demo` again to add new demo tasks to the same table.")
