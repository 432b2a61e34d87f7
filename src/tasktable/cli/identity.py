"""``tasktable user ...`` and ``tasktable token ...``: who may use the dashboard and the API."""

from __future__ import annotations

import sys

import click

from ..auth import Identity, IdentityNotFound, Role
from ..errors import InvalidInput
from .common import CliState, command_options, json_option, pass_state, print_json
from .main import cli

_ROLES = click.Choice([r.value for r in Role], case_sensitive=False)


def _identity(state: CliState) -> Identity:
    return Identity(state.table())


def _read_password(from_stdin: bool) -> str:
    """The first line of stdin, or a password typed twice at a hidden prompt."""
    if not from_stdin:
        return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise InvalidInput("No password on stdin; pipe it in, e.g. printf '%s\\n' \"$PW\" | ...")
    return password


_PASSWORD_STDIN = click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)


@cli.group()
def user() -> None:
    """Dashboard users: viewers read, operators act, admins also manage users and tokens."""


@user.command("add")
@click.argument("name")
@click.option("--role", type=_ROLES, required=True, help="viewer, operator or admin.")
@_PASSWORD_STDIN
@json_option
@command_options
@pass_state
def user_add(state: CliState, name: str, role: str, password_stdin: bool, as_json: bool) -> None:
    """Add a user NAME; the password is asked for (or read from stdin)."""
    created = _identity(state).add_user(name, role, _read_password(password_stdin))
    if as_json:
        print_json(created.to_json())
    else:
        click.echo(f"Added user {created.name!r} with the {created.role.value} role.")


@user.command("list")
@json_option
@command_options
@pass_state
def user_list(state: CliState, as_json: bool) -> None:
    """List users and their roles."""
    users = _identity(state).list_users()
    if as_json:
        print_json([u.to_json() for u in users])
        return
    if not users:
        click.echo("No users yet; add one with: tasktable user add NAME --role admin")
    for u in users:
        last = u.last_login_at.strftime("%Y-%m-%d %H:%M") if u.last_login_at else "never"
        click.echo(f"{u.name}\t{u.role.value}\tlast login: {last}")


@user.command("passwd")
@click.argument("name")
@_PASSWORD_STDIN
@command_options
@pass_state
def user_passwd(state: CliState, name: str, password_stdin: bool) -> None:
    """Set a new password for the user NAME; their dashboard sessions end."""
    identity = _identity(state)
    if not any(u.name == name for u in identity.list_users()):
        raise IdentityNotFound(f"No user named {name!r}.")
    identity.set_password(name, _read_password(password_stdin))
    click.echo(f"Changed the password of {name!r}; their dashboard sessions have ended.")


@user.command("remove")
@click.argument("name")
@command_options
@pass_state
def user_remove(state: CliState, name: str) -> None:
    """Remove the user NAME."""
    _identity(state).remove_user(name)
    click.echo(f"Removed user {name!r}.")


@cli.group()
def token() -> None:
    """API tokens (bearer tokens of the REST API): created, listed, revoked."""


@token.command("create")
@click.option("--name", required=True, help="A label to recognise and revoke it by.")
@click.option("--role", type=_ROLES, required=True, help="viewer, operator or admin.")
@json_option
@command_options
@pass_state
def token_create(state: CliState, name: str, role: str, as_json: bool) -> None:
    """Create a token and print it once (it is stored hashed: copy it now)."""
    created, secret = _identity(state).create_token(name, role)
    if as_json:
        print_json({**created.to_json(), "token": secret})
        return
    click.echo(
        f"Created token {created.name!r} ({created.role.value}). It is shown only now; "
        "send it as 'Authorization: Bearer <token>':",
        err=True,
    )
    click.echo(secret)


@token.command("list")
@json_option
@command_options
@pass_state
def token_list(state: CliState, as_json: bool) -> None:
    """List tokens: name, role, first characters, last use (never the secret)."""
    tokens = _identity(state).list_tokens()
    if as_json:
        print_json([t.to_json() for t in tokens])
        return
    if not tokens:
        click.echo("No tokens yet; create one with: tasktable token create --name N --role viewer")
    for t in tokens:
        used = t.last_used_at.strftime("%Y-%m-%d %H:%M") if t.last_used_at else "never"
        click.echo(f"{t.name}\t{t.role.value}\t{t.prefix}...\tlast used: {used}")


@token.command("revoke")
@click.argument("name")
@command_options
@pass_state
def token_revoke(state: CliState, name: str) -> None:
    """Revoke the token NAME: it stops working at once."""
    _identity(state).revoke_token(name)
    click.echo(f"Revoked token {name!r}.")
