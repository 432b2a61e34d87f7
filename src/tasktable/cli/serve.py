"""``tasktable serve``: the REST API (and the dashboard) over HTTP with uvicorn."""

from __future__ import annotations

import ipaddress

import click

from ..errors import TaskTableError
from ..storage.engine import safe_url
from .common import CliState, command_options, pass_state
from .main import cli


class UnsafeBind(TaskTableError):
    code = "unsafe_bind"


def is_loopback(host: str) -> bool:
    """True for localhost and 127.0.0.0/8 or ::1; any other name or address is public."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@cli.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    envvar="TASKTABLE_HOST",
    help="Address to listen on; other than loopback only once a user or token exists.",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8080,
    show_default=True,
    envvar="TASKTABLE_PORT",
)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="info",
    show_default=True,
)
@command_options
@pass_state
def serve(state: CliState, host: str, port: int, log_level: str) -> None:
    """Serve the dashboard at / and the REST API under /api/v1 (users: tasktable user add)."""
    import uvicorn

    from ..auth import Identity
    from ..web import create_app

    table = state.table()
    identity = Identity(table)
    has_principals = identity.has_principals()  # also checks the schema, before binding
    if not is_loopback(host) and not has_principals:
        raise UnsafeBind(
            f"Refusing to listen on {host} while no user or API token exists. Create one "
            "first: tasktable token create --name admin --role admin (or tasktable user add "
            "NAME --role admin); or listen on 127.0.0.1."
        )
    if not has_principals:
        click.echo(
            "No user or token exists yet: every API call but /api/v1/health will be refused. "
            "Create a token with: tasktable token create --name NAME --role operator",
            err=True,
        )
    app = create_app(table, identity=identity)
    shown = f"[{host}]" if ":" in host else host
    click.echo(
        f"tasktable dashboard on http://{shown}:{port}/ and API on http://{shown}:{port}/api/v1 "
        f"(database {safe_url(table.url)})",
        err=True,
    )
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=10,
    )
