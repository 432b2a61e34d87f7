"""A database password never appears in an answer or a log line, even when the
database goes away under a running server (then: 503, never another 5xx)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, make_url, text

from tasktable.cli.main import main

from .conftest import (
    MYSQL_ADMIN_URL,
    PG_ADMIN_URL,
    free_port,
    fresh_database,
    launch,
    seed_identity,
    server_environment,
)

PASSWORD = "s3cr3t-Pa55w0rd"


@pytest.mark.services
def test_postgresql_password_stays_secret_when_the_database_vanishes(tmp_path: Path) -> None:
    with fresh_database("postgresql", tmp_path) as plain:
        # The test server trusts local connections: the password is carried, not checked.
        url = make_url(plain).set(password=PASSWORD).render_as_string(hide_password=False)
        tokens = seed_identity(url)
        server = launch(url, server_environment(tmp_path / "canary"), tmp_path, tokens)
        answers: list[str] = []
        try:
            client = server.client("admin")
            for path in ("/health", "/tasks", "/stats"):
                response = client.get(path)
                assert response.status_code == 200
                answers.append(response.text)
            admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                name = make_url(plain).database
                conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            admin.dispose()
            health = httpx.get(f"{server.api}/health", timeout=30)
            assert health.status_code == 503
            assert health.json()["database"] == "down"
            answers.append(health.text)
            for method, path in (("GET", "/tasks"), ("GET", "/stats"), ("POST", "/tasks/1/retry")):
                response = client.request(method, path)
                assert response.status_code in (401, 503), response.text  # the token is gone too
                assert response.json()["error"]["code"] in ("database_unavailable", "unauthorized")
                answers.append(response.text)
        finally:
            server.stop()
        log = server.output()
        assert "database_unavailable" in "".join(answers) or "unauthorized" in "".join(answers)
        for text_seen in [*answers, log]:
            assert PASSWORD not in text_seen
        assert "Traceback" not in log


@pytest.mark.services
def test_a_refused_login_to_the_database_keeps_the_password_out(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = make_url(MYSQL_ADMIN_URL).set(password=PASSWORD).render_as_string(hide_password=False)
    code = main(["serve", "--db", url, "--port", str(free_port())])
    out, err = capsys.readouterr()
    assert code == 1
    assert err.startswith("Error: ")
    assert PASSWORD not in out + err
    assert "***" in err
