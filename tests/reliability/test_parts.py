"""The worker's parts, each alone: health, rescuer, completer, wire protocol, runners.

No worker process here: fakes stand in for the storage where the point is the
part's own logic, and a real slot process where the point is the process.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from tasktable.core.status import TaskStatus
from tasktable.core.task import ActionLink, Message, Progress, Task
from tasktable.errors import DatabaseError
from tasktable.settings import Settings
from tasktable.storage.base import Outcome
from tasktable.worker.completer import Completer, transient
from tasktable.worker.health import DbHealth
from tasktable.worker.maintenance import Rescuer
from tasktable.worker.protocol import (
    Attach,
    Done,
    LogLine,
    Report,
    Started,
    decode_event,
    encode_event,
    task_from_json,
    task_to_json,
)
from tasktable.worker.runners import ProcessRunner, ThreadRunner

NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)


def a_task(**changes: Any) -> Task:
    task = Task(
        id=7,
        name="Echo",
        handler="tests.support.handlers:Echo",
        args={"x": [1, "é"]},
        status=TaskStatus.RUNNING,
        messages=(Message(text="hello", level="info", time=NOW),),
        created_at=NOW,
        executed_at=NOW,
        finished_at=None,
        action_link=ActionLink(text="CSV", route_path="r/p", route_params={"a": 1}),
        queue="default",
        priority=0,
        run_at=NOW,
        attempts=1,
        max_attempts=3,
        timeout=None,
        progress=Progress(done=1, total=2),
        error=None,
        worker="w",
        heartbeat_at=NOW,
        unique_key=None,
        claim_token="secret-token",
    )
    return task.replace(**changes)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- health and the rescuer ----------------------------------------------------------
def test_health_measures_outages() -> None:
    clock = Clock()
    health = DbHealth(clock)
    assert health.outage() == 0 and health.stable_for(30)  # no outage seen: stable
    health.failed(RuntimeError("down"))
    clock.now += 12
    health.failed(RuntimeError("still down"))
    assert health.outage() == 12 and not health.stable_for(0)
    health.ok()
    assert health.outage() == 0 and not health.stable_for(5)
    clock.now += 5
    assert health.stable_for(5)


class FakeStorage:
    def __init__(self) -> None:
        self.rescues = 0
        self.finishes: list[Outcome] = []
        self.fail_with: list[BaseException] = []
        self.reachable = True
        self.result = True

    def rescue(self, dead_after: float, max_lost: int) -> list[int]:
        self.rescues += 1
        return [1]

    def finish(self, task: Task, outcome: Outcome) -> bool:
        if self.fail_with:
            raise self.fail_with.pop(0)
        self.finishes.append(outcome)
        return self.result

    def server_now(self) -> datetime:
        if not self.reachable:
            raise DatabaseError("down")
        return NOW


def test_the_rescuer_holds_back_after_an_outage() -> None:
    clock = Clock()
    health = DbHealth(clock)
    storage = FakeStorage()
    rescuer = Rescuer(storage, dead_after=30, health=health)  # type: ignore[arg-type]
    assert rescuer.run_once() == [1]
    health.failed(RuntimeError("restart"))
    clock.now += 10
    health.ok()
    assert rescuer.run_once() == []  # every heartbeat is old now: give workers time
    clock.now += 30
    assert rescuer.run_once() == [1]
    assert storage.rescues == 2


# -- the completer -------------------------------------------------------------------
def refused() -> DatabaseError:
    exc = DatabaseError("The database refused a statement: data too long.")
    exc.__cause__ = ValueError("Data too long for column 'messages'")
    return exc


def lost_connection() -> DatabaseError:
    class OperationalError(Exception):
        pass

    exc = DatabaseError("Cannot use the database: server closed the connection.")
    exc.__cause__ = OperationalError("server closed the connection unexpectedly")
    return exc


def outcome(status: TaskStatus = TaskStatus.SUCCESS, n: int = 3) -> Outcome:
    messages = tuple(Message(text="x" * 10_000, time=NOW) for _ in range(n))
    return Outcome(status=status, messages=messages, error="trace " * 20_000)


def test_a_completer_retries_through_an_outage() -> None:
    storage = FakeStorage()
    storage.fail_with = [lost_connection(), lost_connection()]
    storage.reachable = False
    completer = Completer(storage)  # type: ignore[arg-type]
    assert completer.complete(a_task(), outcome()) is True
    assert len(storage.finishes) == 1 and storage.finishes[0] == outcome()
    assert completer.health.outages == 1 and not completer.health.failing


def test_a_refused_outcome_is_trimmed_then_given_up() -> None:
    storage = FakeStorage()
    storage.fail_with = [refused(), refused()]
    completer = Completer(storage)  # type: ignore[arg-type]
    assert completer.complete(a_task(), outcome(n=80)) is True
    saved = storage.finishes[0]
    assert saved.status is TaskStatus.SUCCESS
    assert len(saved.messages) == 51 and "trimmed" in saved.messages[-1].text
    assert all(len(m.text) <= 4000 for m in saved.messages)
    assert saved.error is not None and len(saved.error) <= 60_000

    storage.fail_with = [refused() for _ in range(4)]
    assert completer.complete(a_task(), outcome()) is False
    assert completer.unsaved == 1


def test_a_lost_lease_discards_the_outcome() -> None:
    storage = FakeStorage()
    storage.result = False
    completer = Completer(storage)  # type: ignore[arg-type]
    assert completer.complete(a_task(), outcome()) is False
    assert completer.lost == 1


class GatedStorage(FakeStorage):
    """The first finish waits at a gate, so that other outcomes queue behind it."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.batches: list[list[int]] = []

    def finish(self, task: Task, outcome: Outcome) -> bool:
        self.gate.wait(5)
        return super().finish(task, outcome)

    def finish_many(self, items: list[tuple[Task, Outcome]]) -> list[bool]:
        if self.fail_with:
            raise self.fail_with.pop(0)
        self.batches.append([t.id for t, _ in items])
        return [t.id != 3 for t, _ in items]  # task 3's lease was lost


def test_outcomes_ready_together_are_written_in_one_batch() -> None:
    storage = GatedStorage()
    completer = Completer(storage)  # type: ignore[arg-type]
    results: dict[int, bool] = {}

    def complete(task_id: int) -> None:
        results[task_id] = completer.complete(a_task(id=task_id), outcome())

    threads = [threading.Thread(target=complete, args=(i,)) for i in range(1, 5)]
    threads[0].start()
    while not completer._writing:
        time.sleep(0.001)
    for t in threads[1:]:
        t.start()
    while len(completer._ready) < 3:
        time.sleep(0.001)
    storage.gate.set()
    for t in threads:
        t.join(5)
    assert results == {1: True, 2: True, 3: False, 4: True}
    assert [sorted(b) for b in storage.batches] == [[2, 3, 4]]
    assert completer.completed == 3 and completer.lost == 1


def test_a_failed_batch_is_retried_one_by_one() -> None:
    storage = GatedStorage()
    storage.gate.set()
    storage.fail_with = [lost_connection()]
    completer = Completer(storage)  # type: ignore[arg-type]
    completer._writing = True  # as if a write were in flight: these two queue up
    threads = [
        threading.Thread(target=completer.complete, args=(a_task(id=i), outcome())) for i in (1, 2)
    ]
    for t in threads:
        t.start()
    while len(completer._ready) < 2:
        time.sleep(0.001)
    completer._hand_on()
    for t in threads:
        t.join(5)
    assert len(storage.finishes) == 2 and completer.completed == 2


def test_transient_errors_are_told_apart() -> None:
    assert transient(lost_connection())
    assert not transient(refused())


# -- the wire protocol ---------------------------------------------------------------
def test_tasks_cross_as_json_without_their_claim_token() -> None:
    task = a_task()
    data = task_to_json(task)
    assert "secret-token" not in str(data)
    assert task_from_json(data) == task.replace(claim_token=None)


@pytest.mark.parametrize(
    "event",
    [
        Started(task_id=7, timeout=2.5),
        Report(task_id=7, progress=Progress(done=2, total=None), messages=(), link=None),
        Attach(task_id=7, filename="a.csv", content_type="text/csv", data=b"\x00\xffbytes"),
        Done(task_id=7, outcome=outcome(TaskStatus.PENDING, 1), saw_cancel=True),
        LogLine(level=40, name="tasktable.worker", text="boom ünïcode"),
    ],
)
def test_events_round_trip(event: Any) -> None:
    raw = encode_event(event)
    assert raw.startswith(b"{")  # JSON, never pickle
    assert decode_event(raw) == event


# -- the runners -----------------------------------------------------------------------
@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["process", "thread"])
def test_a_runner_runs_a_task_and_reports(kind: str) -> None:
    settings = Settings()
    runner = ProcessRunner("t", settings) if kind == "process" else ThreadRunner("t", settings)
    runner.ensure_started()
    try:
        runner.begin(a_task(handler="tests.support.handlers:Progressive", args={"total": 2}))
        events: list[Any] = []
        while not any(isinstance(e, Done) for e in events):
            event = runner.next_event(30)
            assert event is not None, f"no event; so far {events}"
            events.append(event)
        kinds = [type(e).__name__ for e in events]
        assert kinds[-1] == "Done"
        assert "Started" not in kinds  # only a handler that declares a timeout says it
        assert "Attach" in kinds and "Report" in kinds
        done = events[-1]
        assert done.outcome.status is TaskStatus.SUCCESS
        assert done.outcome.progress == Progress(done=2, total=2)
        attach = next(e for e in events if isinstance(e, Attach))
        assert attach.data == b"id,status\n1,ok\n"
    finally:
        runner.close()


@pytest.mark.timeout(60)
def test_a_process_runner_stops_a_run_and_comes_back() -> None:
    runner = ProcessRunner("t", Settings())
    runner.ensure_started()
    first = runner.pid
    runner.begin(a_task(handler="tests.worker.handlers:Nap", args={"seconds": 60}))
    started = runner.next_event(30)
    assert isinstance(started, Started) and started.timeout == 600  # Nap declares one
    assert runner.next_event(0.3) is None  # it runs; nothing to say
    how = runner.stop_task(2.0)
    assert how in ("stopped with SIGTERM", "killed with SIGKILL")
    assert runner.pid is None
    runner.ensure_started()
    assert runner.pid not in (None, first)
    runner.close()


def test_thread_runner_abandons_what_it_cannot_stop() -> None:
    runner = ThreadRunner("t", Settings())
    runner.begin(a_task(handler="tests.worker.handlers:Nap", args={"seconds": 3}))
    assert isinstance(runner.next_event(10), Started)
    assert "abandoned" in runner.stop_task(0.1)
    assert runner.abandoned == 1
    assert runner.next_event(0.1) is None  # its late events go nowhere


def test_a_slot_process_imports_no_sqlalchemy() -> None:
    """What a slot process imports (its entry point, the public names a handler uses)
    stays free of SQLAlchemy: it never touches the table, and each slot pays for it."""
    code = (
        "import sys, tasktable.worker.child\n"
        "from tasktable import RunningTask, TaskHandler, handler\n"
        "assert 'sqlalchemy' not in sys.modules, 'sqlalchemy imported'\n"
        "from tasktable import TaskTable\n"
        "assert 'sqlalchemy' in sys.modules and TaskTable.__name__ == 'TaskTable'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
