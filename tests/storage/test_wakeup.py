"""Wake-ups: an enqueue wakes a listening worker (PostgreSQL NOTIFY, SQLite data_version)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest

from tasktable import TaskTable

from .helpers import ECHO


@contextmanager
def listening(table: TaskTable) -> Iterator[queue.Queue[str | None]]:
    heard: queue.Queue[str | None] = queue.Queue()
    stop = threading.Event()
    thread = threading.Thread(target=table.storage.listen, args=(heard.put, stop), daemon=True)
    thread.start()
    try:
        assert heard.get(timeout=10) is None  # listening: "look once" first
        yield heard
    finally:
        stop.set()
        thread.join(10)


def test_an_enqueue_wakes_a_listener(table: TaskTable) -> None:
    caps = table.storage.capabilities
    if not (caps.listen_notify or caps.same_host_wakeup):
        with pytest.raises(NotImplementedError):
            table.storage.listen(lambda q: None, threading.Event())
        return
    with listening(table) as heard:
        table.enqueue(ECHO, queue="mail")
        assert heard.get(timeout=10) == ("mail" if caps.listen_notify else None)


def test_a_postgres_notice_is_sent_at_commit_for_due_tasks_only(table: TaskTable) -> None:
    if not table.storage.capabilities.listen_notify:
        pytest.skip("PostgreSQL only")
    with listening(table) as heard:
        table.enqueue(ECHO, queue="later", delay=timedelta(hours=1))
        table.enqueue(ECHO, queue="now")
        assert heard.get(timeout=10) == "now"
