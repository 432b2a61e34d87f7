"""Files a task attaches: stored fenced by the claim, read back byte for byte."""

from __future__ import annotations

import pytest

from tasktable import TaskTable
from tasktable.core.status import TaskStatus
from tasktable.errors import InvalidInput

from .helpers import ECHO, claim_one, file_rows, finish, register

EVERY_BYTE = bytes(range(256)) * 4


def test_attach_and_read_back(table: TaskTable) -> None:
    task = table.enqueue(ECHO)
    claimed = claim_one(table, register(table))
    assert table.storage.attach_file(claimed, "report.csv", "text/csv", b"id,status\n1,ok\n")
    assert table.storage.attach_file(claimed, "raw.bin", "application/octet-stream", EVERY_BYTE)
    finish(table, claimed, TaskStatus.SUCCESS)

    meta, data = table.read_file(task.id, "report.csv")
    assert data == b"id,status\n1,ok\n"
    assert (meta.task_id, meta.filename, meta.content_type, meta.size) == (
        task.id,
        "report.csv",
        "text/csv",
        15,
    )
    assert meta.created_at.tzinfo is not None
    assert table.read_file(task.id, "raw.bin")[1] == EVERY_BYTE
    assert [f.filename for f in table.get(task.id).files] == ["report.csv", "raw.bin"]
    assert [f.size for f in table.get(task.id).files] == [15, len(EVERY_BYTE)]


def test_a_file_with_the_same_name_replaces_the_old_one(table: TaskTable) -> None:
    task = table.enqueue(ECHO)
    claimed = claim_one(table, register(table))
    assert table.storage.attach_file(claimed, "out.txt", "text/plain", b"first version")
    assert table.storage.attach_file(claimed, "out.txt", "text/markdown", b"second")
    meta, data = table.read_file(task.id, "out.txt")
    assert (data, meta.size, meta.content_type) == (b"second", 6, "text/markdown")
    assert file_rows(table) == 1
    assert len(table.get(task.id).files) == 1


def test_names_are_kept_as_given(table: TaskTable) -> None:
    task = table.enqueue(ECHO)
    claimed = claim_one(table, register(table))
    for name in ["Relatório de março.csv", "with spaces.txt", "UPPER.TXT", "upper.txt"]:
        assert table.storage.attach_file(claimed, name, "text/plain", name.encode())
    for name in ["Relatório de março.csv", "with spaces.txt", "UPPER.TXT", "upper.txt"]:
        assert table.read_file(task.id, name)[1] == name.encode()


def test_empty_and_large_files(table: TaskTable) -> None:
    task = table.enqueue(ECHO)
    claimed = claim_one(table, register(table))
    big = EVERY_BYTE * 2048  # 2 MiB: past MariaDB's BLOB and MEDIUMBLOB-sized packets
    assert table.storage.attach_file(claimed, "empty", "text/plain", b"")
    assert table.storage.attach_file(claimed, "big", "application/octet-stream", big)
    assert table.read_file(task.id, "empty")[1] == b""
    assert table.read_file(task.id, "big")[1] == big


def test_attach_is_fenced(table: TaskTable) -> None:
    task = table.enqueue(ECHO)
    claimed = claim_one(table, register(table))
    stale = claimed.replace(claim_token="f" * 32)
    assert not table.storage.attach_file(stale, "x.txt", "text/plain", b"x")
    finish(table, claimed, TaskStatus.SUCCESS)
    assert not table.storage.attach_file(claimed, "x.txt", "text/plain", b"x")
    assert file_rows(table) == 0
    assert table.get(task.id).files == ()


def test_reading_a_missing_file(table: TaskTable) -> None:
    task = table.enqueue(ECHO)
    with pytest.raises(InvalidInput, match=r"no file named 'nope\.csv'"):
        table.read_file(task.id, "nope.csv")
    with pytest.raises(InvalidInput):
        table.read_file(999_999, "nope.csv")


def test_files_of_one_task_are_not_anothers(table: TaskTable) -> None:
    first = table.enqueue(ECHO, priority=1)
    second = table.enqueue(ECHO)
    worker = register(table)
    a, b = claim_one(table, worker), claim_one(table, worker)
    assert (a.id, b.id) == (first.id, second.id)
    assert table.storage.attach_file(a, "same.txt", "text/plain", b"A")
    assert table.storage.attach_file(b, "same.txt", "text/plain", b"B")
    assert table.read_file(first.id, "same.txt")[1] == b"A"
    assert table.read_file(second.id, "same.txt")[1] == b"B"


def test_reading_a_file_name_with_a_nul_character(table: TaskTable) -> None:
    task = table.enqueue(ECHO)
    with pytest.raises(InvalidInput, match="no file"):
        table.read_file(task.id, "a\x00.csv")


def test_a_file_at_the_default_size_limit(table: TaskTable) -> None:
    """10 MiB of NUL bytes: the worst case for a driver that escapes bytes into SQL."""
    limit = table.settings.max_file_bytes
    task = table.enqueue(ECHO)
    claimed = claim_one(table, register(table))
    assert table.storage.attach_file(claimed, "zeros.bin", "application/octet-stream", bytes(limit))
    meta, data = table.read_file(task.id, "zeros.bin")
    assert meta.size == limit and data == bytes(limit)
