"""Commands on tasks: enqueue, list, show, retry, cancel, delete, clean, stats."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text

from ..app import TaskTable
from ..core.durations import format_duration, parse_duration
from ..core.status import TaskStatus
from ..core.task import Task
from ..core.validation import parse_json_args
from ..errors import InvalidInput, TaskNotFound, TaskTableError
from .common import CliState, command_options, json_option, pass_state, print_json
from .main import cli

_STATUS_STYLE = {
    "pending": "yellow",
    "running": "cyan",
    "success": "green",
    "error": "red",
    "cancelled": "dim",
}


class TaskNotFoundError(TaskTableError):
    """Some of the ids given name no task (the message lists them all)."""

    code = "not_found"


def _ids(values: tuple[str, ...]) -> list[int]:
    ids: list[int] = []
    for value in values:
        try:
            ids.append(int(value))
        except ValueError:
            raise InvalidInput(f"Task id {value!r} is not a number.") from None
    return ids


@cli.command()
@click.argument("handler")
@click.option(
    "--args",
    "args_text",
    default=None,
    metavar="JSON",
    help="Arguments as a JSON object or array, e.g. '{\"order_ids\": [1, 2]}'.",
)
@click.option("--name", default=None, help="Task name (default: the handler's task name).")
@click.option("--queue", default="default", show_default=True)
@click.option(
    "--priority", type=int, default=0, show_default=True, help="-100..100; higher runs first."
)
@click.option("--delay", default=None, help="Run no earlier than this from now, e.g. 10s, 5m.")
@click.option("--run-at", default=None, metavar="ISO", help="Run no earlier than this UTC time.")
@click.option("--max-attempts", type=int, default=None, help="Runs in all if it keeps failing.")
@click.option("--timeout", default=None, help="Stop the task after this long, e.g. 30s.")
@click.option("--unique-key", default=None, help="No second live task with this key.")
@click.option(
    "--no-verify",
    is_flag=True,
    help="Do not import the handler to check it (the worker still will).",
)
@json_option
@command_options
@pass_state
def enqueue(
    state: CliState,
    handler: str,
    args_text: str | None,
    name: str | None,
    queue: str,
    priority: int,
    delay: str | None,
    run_at: str | None,
    max_attempts: int | None,
    timeout: str | None,
    unique_key: str | None,
    no_verify: bool,
    as_json: bool,
) -> None:
    """Add a task for HANDLER (package.module:ClassName) and print its id."""
    args = _parse_args(args_text) if args_text is not None else {}
    seconds = parse_duration(timeout).total_seconds() if timeout is not None else None
    task = state.table().enqueue(
        handler,
        args,
        name=name,
        queue=queue,
        priority=priority,
        delay=delay,
        run_at=run_at,
        max_attempts=max_attempts,
        timeout=seconds,
        unique_key=unique_key,
        verify=not no_verify,
    )
    if as_json:
        print_json(task.to_json())
    else:
        click.echo(task.id)


def _parse_args(text: str) -> dict[str, Any] | list[Any]:
    """--args is JSON text whose value must be an object or array: never decoded twice
    (``'"[1]"'`` is a string, not a list) and ``null`` is not ``{}``."""
    value = parse_json_args(text)
    if not isinstance(value, dict | list):
        kind = "null" if value is None else type(value).__name__
        raise InvalidInput(
            f"Args must be a JSON object or array, not {kind}; "
            'write them like {"order_ids": [1, 2]} or [1, 2].'
        )
    return value


@cli.command(name="list")
@click.option(
    "--status", "statuses", multiple=True, help="pending, running, success, error, cancelled."
)
@click.option("--name", default=None, help="Name contains this text (case-insensitive).")
@click.option("--handler", default=None, help="Exact handler path.")
@click.option("--queue", "queues", multiple=True)
@click.option("--search", default=None, help="Name, handler or args contain this text.")
@click.option("--sort", default="-id", show_default=True, help="Field, '-' for descending.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--cursor", default=None, help="Next-page cursor printed by a previous list.")
@json_option
@command_options
@pass_state
def list_(
    state: CliState,
    statuses: tuple[str, ...],
    name: str | None,
    handler: str | None,
    queues: tuple[str, ...],
    search: str | None,
    sort: str,
    limit: int,
    cursor: str | None,
    as_json: bool,
) -> None:
    """List tasks, newest first."""
    page = state.table().list(
        status=list(statuses) or None,
        name=name,
        handler=handler,
        queue=list(queues) or None,
        search=search,
        sort=sort,
        limit=limit,
        cursor=cursor,
    )
    if as_json:
        print_json({"tasks": [t.to_json() for t in page.tasks], "next_cursor": page.next_cursor})
        return
    table = Table(box=None, header_style="bold")
    for column in ("id", "name", "handler", "status", "queue", "created_at", "finished_at"):
        table.add_column(column)
    for task in page.tasks:
        table.add_row(  # text from tasks is shown as is, never read as Rich markup
            str(task.id),
            Text(task.name),
            Text(task.handler),
            f"[{_STATUS_STYLE[task.status.value]}]{task.status.value}[/]",
            Text(task.queue),
            _ts(task.created_at),
            _ts(task.finished_at),
        )
    console = Console()
    console.print(table)
    if page.next_cursor:
        console.print(f"[dim]More: --cursor {page.next_cursor}[/]")


def _ts(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


@cli.command()
@click.argument("task_id")
@json_option
@command_options
@pass_state
def show(state: CliState, task_id: str, as_json: bool) -> None:
    """Show one task with its messages, progress, error and files."""
    task = state.table().get(_ids((task_id,))[0])
    if as_json:
        print_json(task.to_json())
        return
    _print_task(task)


def _print_task(task: Task) -> None:
    console = Console(highlight=False)
    rows: list[tuple[str, str]] = [
        ("id", str(task.id)),
        ("name", task.name),
        ("handler", task.handler),
        ("status", f"[{_STATUS_STYLE[task.status.value]}]{task.status.value}[/]"),
        ("args", _json(task.args)),
        ("queue", task.queue),
        ("priority", str(task.priority)),
        ("attempts", f"{task.attempts} of {task.max_attempts}"),
        ("created_at", _ts(task.created_at)),
        ("run_at", _ts(task.run_at)),
        ("executed_at", _ts(task.executed_at)),
        ("finished_at", _ts(task.finished_at)),
    ]
    if task.progress:
        total = f"/{task.progress.total}" if task.progress.total is not None else ""
        rows.append(("progress", f"{task.progress.done}{total}"))
    if task.worker:
        rows.append(("worker", task.worker))
    if task.action_link and not task.action_link.is_empty:
        rows.append(("action_link", _json(task.action_link.to_json())))
    for f in task.files:
        rows.append(("file", f"{f.filename} ({f.size} bytes, {f.content_type})"))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for key, value in rows:  # text from tasks is shown as is, never read as Rich markup
        grid.add_row(key, value if key == "status" else Text(value))
    console.print(grid)
    if task.messages:
        console.print("[bold]messages[/]")
        for m in task.messages:
            console.print(f"  {_ts(m.time)} [{m.level}] {m.text}", markup=False)
    if task.error:
        console.print("[bold]error[/]")
        console.print(task.error, markup=False)


def _json(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


def _require_existing(table: TaskTable, ids: list[int], verb: str) -> None:
    """Refuse the whole command, before any change, when an id names no task."""
    unique = sorted(set(ids))
    if table.count(ids=unique) == len(unique):
        return
    unknown = [i for i in unique if not _exists(table, i)]
    if unknown:
        label = "task with id" if len(unknown) == 1 else "tasks with ids"
        raise TaskNotFoundError(f"No {label} {', '.join(map(str, unknown))}; nothing was {verb}.")


def _exists(table: TaskTable, task_id: int) -> bool:
    try:
        table.get(task_id)
    except TaskNotFound:
        return False
    return True


_ALLOWED = {
    "retried": ("only error or cancelled tasks can be retried", {"error", "cancelled"}),
    "cancelled": ("only pending or running tasks can be cancelled", {"pending", "running"}),
    "deleted": ("", set()),
}


def _report(
    state: CliState,
    verb: str,
    ids: list[int],
    moved: list[int],
    as_json: bool,
    extra: dict[str, list[int]] | None = None,
) -> int:
    """Print what moved and why the rest did not; exit 1 when any task was left as it was."""
    extra = extra or {}
    done = set(moved).union(*extra.values())
    unchanged = sorted({i for i in ids if i not in done})
    if as_json:
        print_json({verb: moved, **extra, "unchanged": unchanged})
    elif moved:
        click.echo(f"{verb.capitalize()}: {', '.join(map(str, moved))}.")
    if not as_json:
        table = state.table()
        for i in unchanged:
            reason = _why_not(table, i, verb)
            click.echo(f"Error: task {i} was not {verb}: {reason}.", err=True)
    return 1 if unchanged else 0


def _why_not(table: TaskTable, task_id: int, verb: str) -> str:
    try:
        task = table.get(task_id)
    except TaskNotFound:
        return "it no longer exists"
    rule, allowed = _ALLOWED[verb]
    if task.status.value not in allowed:
        return f"it is {task.status.value}; {rule}"
    if verb == "retried" and task.unique_key:
        return f"another pending or running task has its unique key {task.unique_key!r}"
    return f"it is {task.status.value} and changed meanwhile; try again"


@cli.command()
@click.argument("task_ids", nargs=-1, required=True)
@json_option
@command_options
@pass_state
def retry(state: CliState, task_ids: tuple[str, ...], as_json: bool) -> int:
    """Run error or cancelled tasks again."""
    ids = _ids(task_ids)
    table = state.table()
    _require_existing(table, ids, "retried")
    return _report(state, "retried", ids, table.retry(*ids), as_json)


@cli.command()
@click.argument("task_ids", nargs=-1, required=True)
@json_option
@command_options
@pass_state
def cancel(state: CliState, task_ids: tuple[str, ...], as_json: bool) -> int:
    """Cancel pending tasks (running ones are asked to stop)."""
    ids = _ids(task_ids)
    table = state.table()
    _require_existing(table, ids, "cancelled")
    cancelled, requested = table.cancel(*ids)
    if requested and not as_json:
        click.echo(f"Asked running task(s) {', '.join(map(str, requested))} to stop.")
    return _report(state, "cancelled", ids, cancelled, as_json, {"stop_requested": requested})


@cli.command()
@click.argument("task_ids", nargs=-1, required=True)
@json_option
@command_options
@pass_state
def delete(state: CliState, task_ids: tuple[str, ...], as_json: bool) -> int:
    """Delete tasks and their files."""
    ids = _ids(task_ids)
    table = state.table()
    _require_existing(table, ids, "deleted")
    return _report(state, "deleted", ids, table.delete(*ids), as_json)


@cli.command()
@click.option(
    "--older-than",
    default=None,
    help="Age of finished tasks to delete [env TASKTABLE_RETENTION; default 30d].",
)
@click.option(
    "--status", "statuses", multiple=True, help="success, error or cancelled (default all three)."
)
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@json_option
@command_options
@pass_state
def clean(
    state: CliState,
    older_than: str | None,
    statuses: tuple[str, ...],
    dry_run: bool,
    batch_size: int,
    as_json: bool,
) -> None:
    """Delete finished tasks older than the retention (never pending or running ones)."""
    table = state.table()
    age = parse_duration(older_than) if older_than else table.settings.retention
    total = table.count_cleanable(age, statuses=list(statuses) or None)
    if dry_run:
        if as_json:
            print_json({"would_delete": total, "older_than_seconds": age.total_seconds()})
        else:
            click.echo(
                f"Would delete {total} task(s) finished more than {format_duration(age)} ago."
            )
        return
    with Progress(
        TextColumn("Cleaning"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=as_json or total < batch_size,
    ) as bar:
        job = bar.add_task("clean", total=total)
        removed = table.clean(
            age,
            statuses=list(statuses) or None,
            batch_size=batch_size,
            progress=lambda n: bar.advance(job, n),
        )
    if as_json:
        print_json({"deleted": removed, "older_than_seconds": age.total_seconds()})
    else:
        click.echo(f"Deleted {removed} task(s) finished more than {format_duration(age)} ago.")


@cli.command()
@json_option
@command_options
@pass_state
def stats(state: CliState, as_json: bool) -> None:
    """Counts by status and queue, throughput, oldest pending task."""
    data = state.table().stats()
    if as_json:
        print_json(data.to_json())
        return
    console = Console(highlight=False)
    table = Table(box=None, header_style="bold")
    table.add_column("queue")
    for status in TaskStatus:
        table.add_column(status.value, justify="right")
    for queue, counts in sorted(data.by_queue.items()):
        table.add_row(queue, *(str(counts.get(s.value, 0)) for s in TaskStatus))
    table.add_row(
        "[bold]all[/]", *(f"[bold]{data.by_status.get(s.value, 0)}[/]" for s in TaskStatus)
    )
    console.print(table)
    age = data.oldest_pending_age
    console.print(
        f"Finished in the last minute: {data.finished_last_minute}, "
        f"last hour: {data.finished_last_hour}"
    )
    console.print(f"Oldest due pending task: {format_duration(age) if age is not None else 'none'}")
    console.print(f"Workers alive: {len(data.workers)}")
