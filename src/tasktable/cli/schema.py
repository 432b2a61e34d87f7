"""``tasktable migrate``."""

from __future__ import annotations

import click

from ..storage.engine import safe_url
from .common import CliState, command_options, json_option, pass_state, print_json
from .main import cli


@cli.command()
@json_option
@command_options
@pass_state
def migrate(state: CliState, as_json: bool) -> None:
    """Create or upgrade the schema (safe to run again)."""
    table = state.table(auto_migrate=False)
    applied = table.migrate()
    if as_json:
        print_json({"applied": applied, "database": safe_url(table.url)})
    elif applied:
        click.echo(f"Applied migration(s) {', '.join(map(str, applied))} to {safe_url(table.url)}.")
    else:
        click.echo(f"The schema of {safe_url(table.url)} is up to date.")
