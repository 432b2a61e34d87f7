"""The pipe between a worker and its slot processes: the compact forms of a run's two
messages (the ``run`` command and its ``Done``), and the frame reader."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from multiprocessing import Pipe
from typing import Any

import pytest

from tasktable.core.status import TaskStatus
from tasktable.core.task import ActionLink, Message, Progress, Task
from tasktable.storage.base import Outcome
from tasktable.worker.protocol import (
    Done,
    FrameReader,
    LogLine,
    Skipped,
    decode_event,
    decode_message,
    encode_done,
    encode_event,
    encode_run,
    encode_skipped,
    frame,
    task_from_run,
)

NOW = datetime(2026, 3, 4, 10, 0, 0, 123456, tzinfo=UTC)


def a_task(**changes: Any) -> Task:
    task = Task(
        id=7,
        name="Echo ünï",
        handler="tests.support.handlers:Echo",
        args={"x": [1, "é", None, 2.5], "nested": {"a": True}},
        status=TaskStatus.RUNNING,
        messages=(Message(text="hello", level="info", time=NOW),),
        created_at=NOW,
        executed_at=NOW + timedelta(seconds=1),
        finished_at=None,
        action_link=ActionLink(text="CSV", route_path="r/p", route_params={"a": 1}),
        queue="mail",
        priority=-3,
        run_at=NOW,
        attempts=2,
        max_attempts=3,
        timeout=1.5,
        progress=Progress(done=1, total=2),
        error="earlier",
        worker="w",
        heartbeat_at=NOW,
        unique_key="k",
        cancel_requested=True,
        rerun_on_loss=False,
        claim_token="secret-token",
    )
    return task.replace(**changes)


@pytest.mark.parametrize(
    "task",
    [
        a_task(),
        a_task(
            args=None,
            messages=(),
            action_link=None,
            progress=None,
            executed_at=None,
            heartbeat_at=None,
            timeout=None,
            error=None,
            unique_key=None,
            cancel_requested=False,
            rerun_on_loss=True,
        ),
        a_task(args=[], progress=Progress(done=0, total=None)),
    ],
)
def test_a_run_command_carries_the_task_but_not_its_claim_token(task: Task) -> None:
    raw = encode_run(task)
    assert b"secret-token" not in raw
    data = decode_message(raw)
    assert isinstance(data, list) and data[0] == "run"  # JSON, never pickle
    assert task_from_run(data) == task.replace(claim_token=None)


def test_times_of_every_run_are_their_own_whatever_the_text_cache_holds() -> None:
    # Shared time objects (one claim's) and fresh ones, more than the cache keeps, and
    # equal instants in other zones: each run carries exactly its task's times.
    shared = NOW + timedelta(seconds=1)
    other_zone = timezone(timedelta(hours=2))
    for i in range(600):
        created = NOW + timedelta(microseconds=i)
        if i % 3 == 0:
            created = created.astimezone(other_zone)
        task = a_task(id=i + 1, created_at=created, run_at=created, executed_at=shared)
        back = task_from_run(decode_message(encode_run(task)))
        assert back.created_at == created and back.created_at.utcoffset() == created.utcoffset()
        assert back.run_at == created and back.executed_at == shared


@pytest.mark.parametrize(
    "outcome",
    [
        Outcome(status=TaskStatus.SUCCESS, messages=()),
        Outcome(status=TaskStatus.SUCCESS, messages=(Message(text="ok", time=NOW),)),
        Outcome(status=TaskStatus.SUCCESS, messages=(), progress=Progress(done=3, total=3)),
        Outcome(status=TaskStatus.SUCCESS, messages=(), action_link=ActionLink(text="t")),
        Outcome(
            status=TaskStatus.PENDING,
            messages=(Message(text="retry", level="warning", time=NOW),),
            error="boom ünï",
            progress=Progress(done=1, total=None),
            action_link=ActionLink(text="CSV", route_path="r/p", route_params={"a": [1]}),
            run_at=NOW,
        ),
        Outcome(status=TaskStatus.PENDING, messages=(), charge_attempt=False),
        Outcome(status=TaskStatus.ERROR, messages=(), error="x"),
        Outcome(status=TaskStatus.CANCELLED, messages=()),
    ],
)
@pytest.mark.parametrize("saw_cancel", [False, True])
def test_done_round_trips_as_a_json_array(outcome: Outcome, saw_cancel: bool) -> None:
    done = Done(task_id=12, outcome=outcome, saw_cancel=saw_cancel)
    raw = encode_done(done)
    assert isinstance(json.loads(raw), list)
    assert decode_event(raw) == done


def test_a_plain_success_is_a_short_message() -> None:
    raw = encode_done(
        Done(task_id=5, outcome=Outcome(status=TaskStatus.SUCCESS, messages=()), saw_cancel=False)
    )
    assert raw == b'["done",5,false]'


def test_skipped_round_trips_in_both_forms() -> None:
    skipped = Skipped(task_id=9)
    assert encode_skipped(skipped) == b'["skipped",9]'
    assert decode_event(encode_skipped(skipped)) == skipped
    assert decode_event(encode_event(skipped)) == skipped


def test_frames_written_together_read_as_connection_frames(pipe: tuple[Any, Any]) -> None:
    reader, writer = pipe
    os.write(writer.fileno(), frame(b"one") + frame(b"") + frame(b"three"))
    assert [reader.recv_bytes() for _ in range(3)] == [b"one", b"", b"three"]


def test_an_unknown_array_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown event"):
        decode_event(b'["what",1]')


def test_the_object_forms_still_decode() -> None:
    done = Done(
        task_id=3, outcome=Outcome(status=TaskStatus.ERROR, messages=(), error="e"), saw_cancel=True
    )
    assert decode_event(encode_event(done)) == done


# -- frames --------------------------------------------------------------------------
@pytest.fixture
def pipe() -> Iterator[tuple[Any, Any]]:
    reader, writer = Pipe(duplex=True)
    yield reader, writer
    reader.close()
    writer.close()


def test_frames_come_one_by_one_even_when_read_together(pipe: tuple[Any, Any]) -> None:
    reader, writer = pipe
    frames = FrameReader(reader.fileno())
    sent = [
        encode_done(
            Done(
                task_id=i, outcome=Outcome(status=TaskStatus.SUCCESS, messages=()), saw_cancel=False
            )
        )
        for i in range(50)
    ]
    sent.append(encode_event(LogLine(level=20, name="n", text="é" * 10)))
    sent.append(b"")
    for raw in sent:
        writer.send_bytes(raw)
    assert [frames.read(1.0) for _ in sent] == sent
    assert frames.read(0.05) is None  # nothing more: None after the timeout
    assert frames.read(0) is None


def test_a_frame_larger_than_one_read_is_assembled(pipe: tuple[Any, Any]) -> None:
    reader, writer = pipe
    frames = FrameReader(reader.fileno())
    big = os.urandom(3 << 20)  # several reads' worth; the sender blocks until we read
    writer.send_bytes(b"first")
    sender = threading.Thread(target=lambda: (writer.send_bytes(big), writer.send_bytes(b"x")))
    sender.start()
    assert frames.read(5.0) == b"first"
    assert frames.read(10.0) == big
    assert frames.read(5.0) == b"x"
    sender.join(5)


def test_a_partial_frame_waits_for_the_rest(pipe: tuple[Any, Any]) -> None:
    reader, writer = pipe
    frames = FrameReader(reader.fileno())
    raw = (5).to_bytes(4, "big") + b"hello"
    os.write(writer.fileno(), raw[:6])
    assert frames.read(0.05) is None
    os.write(writer.fileno(), raw[6:])
    assert frames.read(1.0) == b"hello"


def test_the_other_end_closing_is_end_of_file(pipe: tuple[Any, Any]) -> None:
    reader, writer = pipe
    frames = FrameReader(reader.fileno())
    writer.send_bytes(b"last")
    os.write(writer.fileno(), (9).to_bytes(4, "big") + b"cut")  # a frame cut short
    writer.close()
    assert frames.read(1.0) == b"last"
    with pytest.raises(EOFError):
        frames.read(1.0)
    with pytest.raises(EOFError):
        frames.read(None)
