"""What every command shares: the state object, --json output, parsing helpers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from ..settings import Settings

if TYPE_CHECKING:
    from ..app import TaskTable


@dataclass
class CliState:
    database_url: str | None = None
    verbose: bool = False
    _table: TaskTable | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        settings = Settings.from_env()
        if self.database_url:
            settings = settings.replace(database_url=self.database_url)
        return settings

    def table(self, *, auto_migrate: bool | None = None) -> TaskTable:
        if self._table is None:
            # Imported here: SQLAlchemy and the drivers are a third of a second of start-up
            # that `tasktable --help` does without, and that the worker overlaps with the
            # start of its fork server (cli/worker.py).
            from ..app import TaskTable

            self._table = TaskTable(settings=self.settings(), auto_migrate=auto_migrate)
        return self._table

    def close(self) -> None:
        if self._table is not None:
            self._table.close()
            self._table = None


pass_state = click.make_pass_decorator(CliState)


def _set_db(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        ctx.ensure_object(CliState).database_url = value


def _set_verbose(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(CliState).verbose = True


def command_options(func: Any) -> Any:
    """``--db`` and ``-v`` accepted after the command name too (``tasktable list --db URL``)."""
    func = click.option(
        "--db",
        "database_url",
        metavar="URL",
        default=None,
        expose_value=False,
        callback=_set_db,
        is_eager=True,
        help="Database URL (overrides TASKTABLE_DATABASE_URL).",
    )(func)
    return click.option(
        "-v",
        "--verbose",
        is_flag=True,
        expose_value=False,
        callback=_set_verbose,
        is_eager=True,
        help="Show debug logs and tracebacks.",
    )(func)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
