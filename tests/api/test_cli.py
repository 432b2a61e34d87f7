"""tasktable user / token / serve, through main(argv) (SQLite: the commands are
the same on every database; the identity service is tested on all three)."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import httpx
import pytest

from tasktable import TaskTable
from tasktable.auth import Identity, NotAuthenticated, Role
from tasktable.auth.sessions import Sessions
from tasktable.cli.main import main
from tasktable.cli.serve import is_loopback

from .conftest import CLI, free_port


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_token_create_prints_the_secret_once(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, "token", "create", "--name", "ci", "--role", "operator", "--db", sqlite_url
    )
    assert code == 0
    secret = out.strip()
    assert secret.startswith("tt_") and len(secret) == 46
    assert "shown only now" in err
    code, out, _ = run(capsys, "token", "list", "--json", "--db", sqlite_url)
    listed = json.loads(out)
    assert [(t["name"], t["role"], t["prefix"]) for t in listed] == [
        ("ci", "operator", secret[:10])
    ]
    assert secret not in out
    code, _, err = run(
        capsys, "token", "create", "--name", "ci", "--role", "viewer", "--db", sqlite_url
    )
    assert code == 1 and err.startswith("Error: A token named 'ci' already exists")
    code, out, _ = run(capsys, "token", "revoke", "ci", "--db", sqlite_url)
    assert code == 0 and "Revoked" in out
    code, _, err = run(capsys, "token", "revoke", "ci", "--db", sqlite_url)
    assert code == 1 and "No token named 'ci'" in err
    code, out, _ = run(
        capsys, "token", "create", "--name", "j", "--role", "admin", "--json", "--db", sqlite_url
    )
    assert json.loads(out)["token"].startswith("tt_")


def test_user_add_list_remove(
    sqlite_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    code, out, err = run(
        capsys, "user", "add", "alice", "--role", "admin", "--password-stdin", "--db", sqlite_url
    )
    assert code == 0, err
    assert "alice" in out and "admin" in out
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    code, _, err = run(
        capsys, "user", "add", "bob", "--role", "viewer", "--password-stdin", "--db", sqlite_url
    )
    assert code == 1 and "at least 8 characters" in err
    code, _, err = run(
        capsys, "user", "add", "carol", "--role", "root", "--password-stdin", "--db", sqlite_url
    )
    assert code == 2 and "root" in err
    code, out, _ = run(capsys, "user", "list", "--json", "--db", sqlite_url)
    assert [(u["name"], u["role"]) for u in json.loads(out)] == [("alice", "admin")]
    assert "password" not in out
    assert run(capsys, "user", "remove", "alice", "--db", sqlite_url)[0] == 0
    assert run(capsys, "user", "remove", "alice", "--db", sqlite_url)[0] == 1


def test_user_add_prompts_for_the_password_twice(
    sqlite_url: str, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    result = subprocess.run(
        [*CLI, "user", "add", "dora", "--role", "viewer", "--db", sqlite_url],
        input="a long enough password\na long enough password\n",
        capture_output=True,
        text=True,
        env=subprocess_env,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "a long enough password" not in result.stdout + result.stderr


def test_user_passwd_changes_the_password_and_ends_sessions(
    sqlite_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = "the first password", "the second password"
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{old}\n"))
    argv = ("--role", "operator", "--password-stdin", "--db", sqlite_url)
    assert run(capsys, "user", "add", "erin", *argv)[0] == 0
    with TaskTable(sqlite_url) as table:
        sessions = Sessions(Identity(table))
        before = sessions.login("erin", old)
        monkeypatch.setattr("sys.stdin", io.StringIO(f"{new}\n"))
        code, out, err = run(
            capsys, "user", "passwd", "erin", "--password-stdin", "--db", sqlite_url
        )
        assert code == 0, err
        assert "erin" in out and new not in out + err
        assert sessions.find(before.secret) is None
        with pytest.raises(NotAuthenticated):
            sessions.login("erin", old)
        assert sessions.login("erin", new).principal.role is Role.OPERATOR
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    code, _, err = run(capsys, "user", "passwd", "erin", "--password-stdin", "--db", sqlite_url)
    assert code == 1 and "at least 8 characters" in err
    code, _, err = run(capsys, "user", "passwd", "nobody", "--password-stdin", "--db", sqlite_url)
    assert code == 1 and "No user named 'nobody'" in err


def test_user_passwd_prompts_for_the_password_twice(
    sqlite_url: str, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    def cli(*argv: str, typed: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, "user", *argv, "--db", sqlite_url],
            input=typed,
            capture_output=True,
            text=True,
            env=subprocess_env,
            cwd=tmp_path,
            timeout=60,
        )

    assert (
        cli("add", "fay", "--role", "viewer", typed="old password\nold password\n").returncode == 0
    )
    done = cli("passwd", "fay", typed="new password!\nnew password!\n")
    assert done.returncode == 0, done.stderr
    assert "new password!" not in done.stdout + done.stderr
    with TaskTable(sqlite_url) as table:
        assert Identity(table).login("fay", "new password!").name == "fay"


def test_serve_refuses_a_public_bind_until_someone_can_log_in(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    port = str(free_port())
    code, _, err = run(capsys, "serve", "--host", "0.0.0.0", "--port", port, "--db", sqlite_url)
    assert code == 1
    assert "Refusing to listen on 0.0.0.0" in err
    assert "tasktable token create --name admin --role admin" in err
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.9.9.9", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
