"""Wake-ups: an enqueue wakes a listening worker (PostgreSQL NOTIFY, SQLite data_version)."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest

from tasktable import TaskTable
from tasktable.storage.wakeup import LISTEN_IDLE
from tasktable.worker.listener import Listener, can_listen

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


def test_a_postgres_batch_wakes_the_queues_of_its_due_tasks_once(table: TaskTable) -> None:
    if not table.storage.capabilities.listen_notify:
        pytest.skip("PostgreSQL only")
    with listening(table) as heard:
        table.enqueue_many(
            [
                {"handler": ECHO, "queue": "later", "delay": "1h"},
                {"handler": ECHO, "queue": "past", "run_at": "2020-01-01T00:00:00Z"},
                *[{"handler": ECHO, "queue": "now"} for _ in range(50)],
            ]
        )
        got = {heard.get(timeout=10), heard.get(timeout=10)}
        assert got == {"past", "now"}
        with pytest.raises(queue.Empty):
            heard.get(timeout=0.5)


def test_a_postgres_notice_waits_for_the_callers_commit(table: TaskTable) -> None:
    if not table.storage.capabilities.listen_notify:
        pytest.skip("PostgreSQL only")
    with listening(table) as heard:
        with table.storage.engine.connect() as conn:
            table.enqueue(ECHO, queue="rolled", connection=conn)
            table.enqueue_many([{"handler": ECHO, "queue": "rolled"}] * 3, connection=conn)
            conn.rollback()
        with table.storage.engine.connect() as conn:
            table.enqueue_many([{"handler": ECHO, "queue": "kept"}] * 3, connection=conn)
            with pytest.raises(queue.Empty):
                heard.get(timeout=0.5)  # not before the commit
            conn.commit()
        assert heard.get(timeout=10) == "kept"
        with pytest.raises(queue.Empty):
            heard.get(timeout=0.5)


def test_a_postgres_unique_task_due_at_once_wakes_its_queue(table: TaskTable) -> None:
    """A task with a unique key is inserted on its own (it may find a live one instead);
    it wakes its queue when it is due at once: no run_at, or one already past."""
    if not table.storage.capabilities.listen_notify:
        pytest.skip("PostgreSQL only")
    with listening(table) as heard:
        table.enqueue(ECHO, queue="later", unique_key="a", delay=timedelta(hours=1))
        table.enqueue_many(
            [
                {
                    "handler": ECHO,
                    "queue": "past",
                    "unique_key": "b",
                    "run_at": "2020-01-01T00:00:00Z",
                }
            ]
        )
        assert heard.get(timeout=10) == "past"
        table.enqueue(ECHO, queue="now", unique_key="c")
        assert heard.get(timeout=10) == "now"
        with pytest.raises(queue.Empty):
            heard.get(timeout=0.5)


def test_an_interrupt_ends_a_postgres_listeners_wait_at_once(table: TaskTable) -> None:
    """With an interrupt descriptor the listener sleeps LISTEN_IDLE (5 s) between looks
    at ``stop``; writing to the descriptor after ``stop`` ends the wait at once, and
    notices still arrive while it sleeps."""
    if not table.storage.capabilities.listen_notify:
        pytest.skip("PostgreSQL only")
    assert LISTEN_IDLE >= 5
    heard: queue.Queue[str | None] = queue.Queue()
    stop = threading.Event()
    read, write = os.pipe()
    try:
        thread = threading.Thread(
            target=table.storage.listen, args=(heard.put, stop, read), daemon=True
        )
        thread.start()
        assert heard.get(timeout=10) is None
        table.enqueue(ECHO, queue="mail")
        assert heard.get(timeout=10) == "mail"
        os.write(write, b"\0")  # a spurious interrupt: it looks at stop and goes on
        table.enqueue(ECHO, queue="sms")
        assert heard.get(timeout=10) == "sms"
        assert thread.is_alive()
        stop.set()
        os.write(write, b"\0")
        thread.join(LISTEN_IDLE / 2)
        assert not thread.is_alive()
    finally:
        stop.set()
        os.close(read)
        os.close(write)


def test_the_workers_listener_stops_when_interrupted_and_closes_its_pipe(
    table: TaskTable,
) -> None:
    """What a stopping worker does: set stop, interrupt, join. On SQLite the poll is
    short anyway; on PostgreSQL the join would take LISTEN_IDLE without the interrupt."""
    if not can_listen(table.storage):
        pytest.skip("no wake-up on this database")
    wake, stop = threading.Event(), threading.Event()
    listener = Listener(table.storage, ["default"], wake, stop)
    listener.start()
    assert wake.wait(10)  # "look once" as it starts listening
    assert listener._pipe is not None
    stop.set()
    listener.interrupt()
    listener.thread.join(LISTEN_IDLE / 2)
    assert not listener.thread.is_alive()
    assert listener._pipe is None  # closed by the thread as it ended
    listener.interrupt()  # after the thread ended: nothing to write to, no error
