"""Runners alone: process slots started from the fork server (or spawned), thread slots.

Real slot processes, no database: what a slot relies on from its runner, and what a
process slot guarantees (its own process; a crash, a segfault or the memory cap takes
only that child down; it inherits none of the worker's threads, locks or connections;
it dies with the worker but not of a SIGTERM sent to the worker's process group).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tasktable.core.status import TaskStatus
from tasktable.core.task import Task
from tasktable.settings import Settings
from tasktable.worker import runners
from tasktable.worker.protocol import Done, Event, Skipped, Started
from tasktable.worker.runners import ProcessRunner, RunnerDied, ThreadRunner

ROOT = Path(__file__).resolve().parents[2]
LINUX = sys.platform.startswith("linux")
H = "tests.worker.handlers"
NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)

pytestmark = pytest.mark.timeout(120)


def a_task(handler: str, task_id: int = 1, **args: Any) -> Task:
    return Task(
        id=task_id,
        name="t",
        handler=f"{H}:{handler}",
        args=args,
        status=TaskStatus.RUNNING,
        messages=(),
        created_at=NOW,
        executed_at=NOW,
        finished_at=None,
        action_link=None,
        queue="default",
        priority=0,
        run_at=NOW,
        attempts=1,
        max_attempts=1,
        timeout=None,
        progress=None,
        error=None,
        worker="w",
        heartbeat_at=NOW,
        unique_key=None,
    )


def run(runner: Any, task: Task, timeout: float = 30) -> tuple[Done, list[Event]]:
    runner.begin(task)
    events: list[Event] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = runner.next_event(1.0)
        if event is None:
            continue
        events.append(event)
        if isinstance(event, Done):
            return event, events
    raise AssertionError(f"no outcome within {timeout}s; events: {events}")


def facts(done: Done) -> dict[str, Any]:
    assert done.outcome.status is TaskStatus.SUCCESS, done.outcome.error
    data: dict[str, Any] = json.loads(done.outcome.messages[-1].text)
    return data


def fork_server_pid() -> int | None:
    from multiprocessing import forkserver

    return forkserver._forkserver._forkserver_pid  # type: ignore[attr-defined]


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "\nState:\tZ" in state or "\nState:\tX" in state


def wait_gone(pids: list[int], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not all(gone(p) for p in pids):
        assert time.monotonic() < deadline, f"still running: {[p for p in pids if not gone(p)]}"
        time.sleep(0.05)


@pytest.fixture
def process_runner() -> Iterator[ProcessRunner]:
    runner = ProcessRunner("t", Settings())
    runner.ensure_started()
    yield runner
    runner.close()


# -- process slots -------------------------------------------------------------------
@pytest.mark.skipif(not LINUX, reason="the fork server is used on Linux")
def test_slot_processes_are_forked_by_the_fork_server(process_runner: ProcessRunner) -> None:
    assert process_runner.ctx.get_start_method() == "forkserver"
    server = fork_server_pid()
    assert server is not None
    seen = facts(run(process_runner, a_task("Introspect"))[0])
    assert seen["pid"] == process_runner.pid != os.getpid()
    assert seen["ppid"] == server
    assert not seen["sqlalchemy"]
    # The fork server itself imported the slot's code only: no SQLAlchemy, no handler module.
    assert "__main__" not in runners.FORKSERVER_PRELOAD
    maps = Path(f"/proc/{server}/maps").read_text()
    assert "sqlalchemy" not in maps


@pytest.mark.skipif(not LINUX, reason="the fork server is used on Linux")
def test_a_slot_inherits_none_of_the_workers_threads_locks_or_connections(
    tmp_path: Path,
) -> None:
    """The worker has threads, a held lock and open database connections when its slot
    starts; the slot process (a fork of the clean fork server) has none of them."""
    from sqlalchemy import create_engine, text

    db = tmp_path / "held.sqlite"
    raw = sqlite3.connect(db)
    raw.execute("CREATE TABLE t (x INTEGER)")
    engine = create_engine(f"sqlite:///{db}")
    conn = engine.connect()
    conn.execute(text("SELECT 1"))
    release = threading.Event()
    held = threading.Lock()
    held.acquire()

    def busy() -> None:
        release.wait(60)

    threads = [threading.Thread(target=busy, name=f"worker-busy-{i}") for i in range(3)]
    for thread in threads:
        thread.start()
    runner = ProcessRunner("t", Settings())
    logging_lock: Any = logging._lock  # type: ignore[attr-defined]
    logging_lock.acquire()  # held by this process while its slot starts and logs
    try:
        runner.ensure_started()
        seen = facts(run(runner, a_task("Introspect"))[0])
    finally:
        logging_lock.release()
        runner.close()
        release.set()
        for thread in threads:
            thread.join()
        conn.close()
        engine.dispose()
        raw.close()
    assert not any(str(db) in f for f in seen["files"]), seen["files"]
    assert not any(name.startswith("worker-busy") for name in seen["threads"])
    assert seen["os_threads"] <= 2, seen  # its main thread and its parent watchdog
    assert not seen["sqlalchemy"]


@pytest.mark.parametrize(
    ("handler", "how"), [("Exit", "exit code 13"), ("Segfault", "killed by signal SIGSEGV")]
)
def test_a_crash_takes_down_only_its_own_slot_process(handler: str, how: str) -> None:
    crashing, other = ProcessRunner("a", Settings()), ProcessRunner("b", Settings())
    try:
        crashing.ensure_started()
        other.ensure_started()
        first, other_pid = crashing.pid, other.pid
        crashing.begin(a_task(handler))
        with pytest.raises(RunnerDied, match=how):
            for _ in range(30):
                crashing.next_event(1.0)
        assert crashing.pid is None
        # The other slot's process is untouched and keeps working.
        assert other.alive() and other.pid == other_pid
        assert facts(run(other, a_task("Introspect"))[0])["pid"] == other_pid
        # The crashed slot gets a fresh process.
        crashing.ensure_started()
        assert crashing.pid not in (None, first)
        assert facts(run(crashing, a_task("Introspect", 2))[0])["pid"] == crashing.pid
    finally:
        crashing.close()
        other.close()


@pytest.mark.parametrize("start_method", [None, "spawn"])
def test_a_slot_process_killed_from_outside_is_seen_as_dead(start_method: str | None) -> None:
    """Its events pipe reaches end of file: the running task's runner says how it died,
    and a killed idle process is found out by the next task (which never started)."""
    runner = ProcessRunner("t", Settings(), start_method=start_method)
    try:
        runner.ensure_started()
        pid = runner.pid
        assert pid is not None
        runner.begin(a_task("Nap", seconds=60))
        assert isinstance(runner.next_event(30), Started)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(RunnerDied, match="killed by signal SIGKILL"):
            for _ in range(30):
                runner.next_event(1.0)
        assert runner.pid is None
        runner.ensure_started()
        idle = runner.pid
        assert idle not in (None, pid)
        os.kill(idle, signal.SIGKILL)  # type: ignore[arg-type]
        wait_gone([idle])  # type: ignore[list-item]
        with pytest.raises(RunnerDied):
            runner.begin(a_task("Introspect", 2))
            for _ in range(30):
                runner.next_event(1.0)
        runner.ensure_started()
        assert facts(run(runner, a_task("Introspect", 3))[0])["pid"] == runner.pid
    finally:
        runner.close()


def test_many_runs_in_a_row_each_get_their_own_outcome(process_runner: ProcessRunner) -> None:
    for task_id in range(1, 201):
        done, events = run(process_runner, a_task("Introspect", task_id))
        assert done.task_id == task_id
        assert [e for e in events if isinstance(e, Done)] == [done]


def test_the_memory_cap_applies_in_the_slot_process_only() -> None:
    cap = 1536 * 1024 * 1024
    runner = ProcessRunner("t", Settings(max_memory=cap))
    try:
        runner.ensure_started()
        assert facts(run(runner, a_task("Introspect"))[0])["rlimit_as"] == cap
    finally:
        runner.close()
    import resource

    assert resource.getrlimit(resource.RLIMIT_AS)[0] != cap


def test_stop_task_ends_a_running_slot_process(process_runner: ProcessRunner) -> None:
    pid = process_runner.pid
    assert pid is not None
    process_runner.begin(a_task("Nap", seconds=60))
    assert isinstance(process_runner.next_event(30), Started)
    assert process_runner.stop_task(2.0) in ("stopped with SIGTERM", "killed with SIGKILL")
    wait_gone([pid])


def test_without_the_fork_server_slots_are_spawned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runners, "_context", None)
    monkeypatch.setattr(runners, "_start_fork_server", lambda: None)
    runner = ProcessRunner("t", Settings())
    try:
        assert runner.ctx.get_start_method() == "spawn"
        runner.ensure_started()
        seen = facts(run(runner, a_task("Introspect"))[0])
        assert seen["ppid"] == os.getpid() and not seen["sqlalchemy"]
    finally:
        runner.close()


@pytest.mark.skipif(not LINUX, reason="the fork server is used on Linux")
def test_a_failing_fork_server_falls_back_to_spawn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runners, "_context", None)
    real = ProcessRunner._start_with

    def failing(self: ProcessRunner, ctx: Any, target: Any, args: Any) -> Any:
        if ctx.get_start_method() == "forkserver":
            raise ConnectionRefusedError("no fork server")
        return real(self, ctx, target, args)

    monkeypatch.setattr(ProcessRunner, "_start_with", failing)
    runner = ProcessRunner("t", Settings())
    try:
        assert runner.ctx.get_start_method() == "forkserver"
        runner.ensure_started()
        assert runner.ctx.get_start_method() == "spawn"
        assert runners.slot_context().get_start_method() == "spawn"  # for every slot now
        assert facts(run(runner, a_task("Introspect"))[0])["ppid"] == os.getpid()
    finally:
        runner.close()


# -- the worker's death and its process group's signals (in a subprocess) ---------------
HOLDER = textwrap.dedent(
    """
    import json, signal, sys, threading
    from tasktable.settings import Settings
    from tasktable.worker.runners import ProcessRunner
    from tests.worker.test_runners import a_task, fork_server_pid, run

    if __name__ == "__main__":
        asked = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: asked.set())
        runner = ProcessRunner("held", Settings())
        runner.ensure_started()
        print(json.dumps({"slot": runner.pid, "server": fork_server_pid()}), flush=True)
        asked.wait(60)
        done, _ = run(runner, a_task("Introspect"))
        print(json.dumps({"status": done.outcome.status.value, "slot": runner.pid}), flush=True)
        runner.close()
    """
)


def start_holder(tmp_path: Path) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, "the holder printed nothing"
    return proc, json.loads(line)


@pytest.mark.skipif(not LINUX, reason="PR_SET_PDEATHSIG is Linux's")
def test_slot_processes_and_the_fork_server_die_with_a_killed_worker(tmp_path: Path) -> None:
    proc, pids = start_holder(tmp_path)
    try:
        assert not gone(pids["slot"]) and not gone(pids["server"])
        proc.kill()
        proc.wait(10)
        wait_gone([pids["slot"], pids["server"]])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()


@pytest.mark.skipif(not LINUX, reason="the fork server is used on Linux")
def test_a_sigterm_to_the_process_group_leaves_the_slots_to_the_worker(tmp_path: Path) -> None:
    proc, pids = start_holder(tmp_path)
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # what a service manager sends
        assert proc.stdout is not None
        after = json.loads(proc.stdout.readline())
        assert after == {"status": "success", "slot": pids["slot"]}
        assert proc.wait(20) == 0
        wait_gone([pids["slot"], pids["server"]])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()


def test_a_handler_in_the_users_main_script_runs_as_before(tmp_path: Path) -> None:
    """A worker started from the user's own script: its slot processes import that
    script (as ``__mp_main__``), so handlers it defines or registers are there."""
    script = tmp_path / "myworker.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            from tasktable import RunningTask, handler
            from tasktable.settings import Settings
            from tasktable.worker.runners import ProcessRunner
            from tests.worker.test_runners import a_task, run

            @handler
            def hello(task: RunningTask) -> None:
                task.add_message(f"hello from {__name__}")

            if __name__ == "__main__":
                runner = ProcessRunner("main", Settings())
                runner.ensure_started()
                done, _ = run(runner, a_task("x").replace(handler="__main__:hello"))
                runner.close()
                print(done.outcome.status.value, done.outcome.messages[-1].text)
            """
        )
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "success hello from __mp_main__"


# -- thread slots ----------------------------------------------------------------------
def test_a_thread_runner_reuses_its_thread() -> None:
    runner = ThreadRunner("t", Settings())
    idents = {facts(run(runner, a_task("Introspect", i))[0])["thread_ident"] for i in range(5)}
    assert len(idents) == 1 and runner.threads_started == 1
    runner.close()


def test_a_thread_runner_replaces_a_thread_it_abandons() -> None:
    runner = ThreadRunner("t", Settings())
    first = facts(run(runner, a_task("Introspect", 1))[0])["thread_ident"]
    runner.begin(a_task("Nap", 2, seconds=1.0))
    assert isinstance(runner.next_event(10), Started)
    assert "abandoned" in runner.stop_task(0.1)
    assert runner.abandoned == 1
    done, events = run(runner, a_task("Introspect", 3))
    assert facts(done)["thread_ident"] != first and runner.threads_started == 2
    time.sleep(1.2)  # the abandoned run ends; its events go nowhere
    assert runner.next_event(0.1) is None
    assert all(e.task_id == 3 for e in events if not isinstance(e, Done))
    # The fresh thread is reused in turn.
    again = facts(run(runner, a_task("Introspect", 4))[0])["thread_ident"]
    assert again == facts(done)["thread_ident"] and runner.threads_started == 2
    runner.close()


def test_a_thread_runner_passes_a_cancel_request_to_the_handler() -> None:
    runner = ThreadRunner("t", Settings())
    runner.begin(a_task("WaitForCancel", 5))
    time.sleep(0.05)
    runner.request_cancel(5)
    done = None
    for _ in range(50):
        event = runner.next_event(0.2)
        if isinstance(event, Done):
            done = event
            break
    assert done is not None and done.saw_cancel
    assert done.outcome.messages[-1].text == "saw the cancel"
    assert runner.stop_task(1.0) == "finished" and runner.abandoned == 0
    runner.close()


# -- what a run says -------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["process", "thread"])
def test_only_a_handler_with_a_timeout_says_started(kind: str) -> None:
    """A run's messages: Started (carrying the handler's timeout) only when the handler
    declares one, since that is all a slot does with it; otherwise just the outcome."""
    runner: Any = (
        ProcessRunner("t", Settings()) if kind == "process" else ThreadRunner("t", Settings())
    )
    try:
        runner.ensure_started()
        _, plain = run(runner, a_task("Introspect", 1))
        assert not any(isinstance(e, Started) for e in plain), plain
        _, timed = run(runner, a_task("Nap", 2, seconds=0.01))
        assert timed[0] == Started(task_id=2, timeout=600)
        assert [type(e) for e in timed[1:]] == [Done]
    finally:
        runner.close()


# -- several tasks per write (ProcessRunner.begin(task, then=...)) ----------------------
def events_until(runner: ProcessRunner, count: int, timeout: float = 30) -> list[Event]:
    """Events until ``count`` tasks have ended (Done or Skipped)."""
    events: list[Event] = []
    deadline = time.monotonic() + timeout
    while sum(isinstance(e, Done | Skipped) for e in events) < count:
        assert time.monotonic() < deadline, f"so far: {events}"
        event = runner.next_event(1.0)
        if event is not None:
            events.append(event)
    return events


def ended(events: list[Event]) -> list[tuple[str, int]]:
    return [(type(e).__name__, e.task_id) for e in events if isinstance(e, Done | Skipped)]


def test_tasks_sent_together_run_one_after_another(process_runner: ProcessRunner) -> None:
    then = [a_task("Introspect", 2), a_task("Nap", 3, seconds=0.05), a_task("Introspect", 4)]
    process_runner.begin(a_task("Introspect", 1), then=then)
    assert [t.id for t in process_runner.sent] == [1, 2, 3, 4]
    events = events_until(process_runner, 4)
    assert ended(events) == [("Done", 1), ("Done", 2), ("Done", 3), ("Done", 4)]
    started = [i for i, e in enumerate(events) if isinstance(e, Started)]
    done_2 = next(i for i, e in enumerate(events) if isinstance(e, Done) and e.task_id == 2)
    assert len(started) == 1 and started[0] > done_2  # task 3 started after 2 ended
    assert not process_runner.sent and process_runner.unstarted() == []
    pids = {facts(e)["pid"] for e in events if isinstance(e, Done) and e.task_id != 3}
    assert pids == {process_runner.pid}
    assert facts(run(process_runner, a_task("Introspect", 5))[0])["pid"] == process_runner.pid


@pytest.mark.parametrize("killed_in", [1, 2])
def test_a_killed_slot_process_gives_back_the_tasks_it_never_started(killed_in: int) -> None:
    runner = ProcessRunner("t", Settings())
    try:
        runner.ensure_started()
        pid = runner.pid
        assert pid is not None
        if killed_in == 1:
            first, then = a_task("Nap", 1, seconds=60), [a_task("Introspect", 2)]
        else:
            first, then = a_task("Introspect", 1), [a_task("Nap", 2, seconds=60)]
        then.append(a_task("Introspect", 3))
        runner.begin(first, then=then)
        events: list[Event] = []
        while not any(isinstance(e, Started) for e in events):
            event = runner.next_event(30)
            assert event is not None
            events.append(event)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(RunnerDied, match="killed by signal SIGKILL"):
            for _ in range(30):
                event = runner.next_event(1.0)
                if event is not None:
                    events.append(event)
        assert ended(events) == [("Done", i) for i in range(1, killed_in)]
        # The one it was running died with it; those after it never started.
        assert [t.id for t in runner.unstarted()] == list(range(killed_in + 1, 4))
        assert runner.unstarted() == []  # handed over once
        runner.ensure_started()
        assert runner.pid != pid
        assert facts(run(runner, a_task("Introspect", 3))[0])["pid"] == runner.pid
    finally:
        runner.close()


def test_stopping_a_run_gives_back_the_tasks_sent_after_it(process_runner: ProcessRunner) -> None:
    process_runner.begin(a_task("Nap", 1, seconds=60), then=[a_task("Introspect", 2)])
    assert isinstance(process_runner.next_event(30), Started)
    assert process_runner.stop_task(2.0) in ("stopped with SIGTERM", "killed with SIGKILL")
    assert [t.id for t in process_runner.unstarted()] == [2]
    process_runner.ensure_started()
    assert facts(run(process_runner, a_task("Introspect", 2))[0])["pid"] == process_runner.pid


def test_revoked_tasks_never_start_even_behind_a_later_begin(
    process_runner: ProcessRunner,
) -> None:
    then = [a_task("Introspect", 2), a_task("Introspect", 3)]
    process_runner.begin(a_task("Nap", 1, seconds=0.3), then=then)
    assert isinstance(process_runner.next_event(30), Started)
    assert process_runner.revoke() == 2  # the last two sent: not started, and never will
    assert [t.id for t in process_runner.sent] == [1]
    # Task 2 sent anew while its revoked run still waits in the pipe: the old one is
    # skipped, the new one runs (a Skipped names a task, not which sending of it).
    assert [e for e in events_until(process_runner, 1) if isinstance(e, Done)]
    process_runner.begin(a_task("Introspect", 2))
    events = events_until(process_runner, 3)
    assert ended(events) == [("Skipped", 2), ("Skipped", 3), ("Done", 2)]
    assert process_runner.revoke() == 0  # nothing left that has not started
    assert facts(run(process_runner, a_task("Introspect", 5))[0])["pid"] == process_runner.pid


def test_a_revoke_before_a_new_batch_starts_never_skips_its_first_task(
    process_runner: ProcessRunner,
) -> None:
    process_runner.begin(a_task("Nap", 1, seconds=0.2), then=[a_task("Introspect", 2)])
    assert isinstance(process_runner.next_event(30), Started)
    assert process_runner.revoke() == 1
    # The process, done with 1, waits at the gate (held here) before it skips 2: the
    # slot begins a new batch, and takes its tail back before the process gets to it.
    process_runner.gate.acquire()
    try:
        assert ended(events_until(process_runner, 1)) == [("Done", 1)]
        process_runner.begin(a_task("Introspect", 3), then=[a_task("Introspect", 4)])
        assert process_runner._take_back() == 1  # 4 only: 3 is the new batch's first
        assert [t.id for t in process_runner.sent] == [3]
    finally:
        process_runner.gate.release()
    events = events_until(process_runner, 3)
    assert ended(events) == [("Skipped", 2), ("Done", 3), ("Skipped", 4)]


def test_revoke_counts_only_what_the_process_has_not_started(
    process_runner: ProcessRunner,
) -> None:
    process_runner.begin(a_task("Introspect", 1), then=[a_task("Nap", 2, seconds=0.5)])
    events: list[Event] = []
    while not any(isinstance(e, Started) and e.task_id == 2 for e in events):
        event = process_runner.next_event(30)
        assert event is not None
        events.append(event)
    assert process_runner.revoke() == 0  # both started: nothing to take back
    while len(ended(events)) < 2:
        event = process_runner.next_event(30)
        assert event is not None
        events.append(event)
    assert ended(events) == [("Done", 1), ("Done", 2)]
