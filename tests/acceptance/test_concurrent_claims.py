"""Why several workers share one queue: a claim never waits on, nor is blocked by, another.

On MariaDB a claim used to lock every due row (a filesort locks all rows it reads), so a
second claim in flight got nothing and burst workers quit early with work left.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tasktable import TaskTable
from tests.support.cli import ECHO


@pytest.fixture(params=["postgresql", "mariadb"])
def server_table(request: pytest.FixtureRequest) -> TaskTable:
    url: str = request.getfixturevalue(f"{request.param}_url")
    table = TaskTable(url)
    table.migrate()
    request.addfinalizer(table.close)
    return table


def test_claims_in_flight_at_once_each_get_their_own_rows(server_table: TaskTable) -> None:
    table = server_table
    tasks = table.enqueue_many({"handler": ECHO, "args": [n]} for n in range(40))
    urgent = table.enqueue(ECHO, {}, priority=5).id
    claimer, engine = table.storage.claimer, table.storage.engine
    connections = [engine.connect() for _ in range(3)]
    try:
        transactions = [conn.begin() for conn in connections]
        got = [
            [row["id"] for row in claimer.claim(conn, f"w{n}", f"token{n}", (), 5)]
            for n, conn in enumerate(connections)
        ]  # all three transactions still open: each holds its rows
        for tx in transactions:
            tx.rollback()
    finally:
        for conn in connections:
            conn.close()

    ids = [t.id for t in tasks]
    assert got == [[urgent, *ids[0:4]], ids[4:9], ids[9:14]]
    with engine.connect() as conn:  # rolled back: nothing moved
        assert (
            conn.execute(
                text("SELECT COUNT(*) FROM tasktable_task WHERE status = 'pending'")
            ).scalar()
            == 41
        )
