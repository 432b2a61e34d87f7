"""The slot process: a long-lived child that runs one task at a time.

It receives a task (as its row's JSON) over a pipe, runs it through the
executor, and sends back events: the handler's timeout, live progress,
files, log lines and the outcome. It never touches the task table: every
database write is the parent's, fenced by the claim.

Signals: SIGINT is ignored (Ctrl-C reaches the whole process group; the
parent decides). SIGTERM is ignored too unless the parent set the
``terminate`` flag first: then it raises :class:`SystemExit` inside the
handler so that ``finally`` blocks run, and the parent sends SIGKILL if that
does not end it. The child dies with the worker (``PR_SET_PDEATHSIG`` on
Linux, and a watchdog on the worker's sentinel pipe everywhere).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection, wait
from typing import Any

from ..core.handlers import Allowlist
from ..core.task import ActionLink, Message, Progress
from .executor import execute
from .protocol import (
    Attach,
    Done,
    Event,
    FrameReader,
    LogLine,
    Report,
    Skipped,
    Started,
    decode_message,
    encode_done,
    encode_event,
    encode_skipped,
    task_from_json,
    task_from_run,
)

_PR_SET_PDEATHSIG = 1


class Channel:
    """The child's end of the pipe; sends are serialized (handlers may log from threads)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.lock = threading.Lock()

    def send(self, event: Event) -> None:
        if isinstance(event, Done):
            raw = encode_done(event)
        elif isinstance(event, Skipped):
            raw = encode_skipped(event)
        else:
            raw = encode_event(event)
        with self.lock:
            self.conn.send_bytes(raw)


class ChannelReporter:
    """The handler's reporter inside a slot process: events to the parent.

    ``cancel_flag`` is shared memory the parent sets to the id of the task it
    wants cancelled, so reading it costs nothing.
    """

    def __init__(self, channel: Channel, task_id: int, cancel_flag: Any) -> None:
        self.channel = channel
        self.task_id = task_id
        self.cancel_flag = cancel_flag
        self.saw_cancel = False

    def report(
        self, progress: Progress | None, messages: tuple[Message, ...], link: ActionLink | None
    ) -> bool:
        self.channel.send(
            Report(task_id=self.task_id, progress=progress, messages=messages, link=link)
        )
        return True

    def attach(self, filename: str, content_type: str, data: bytes) -> bool:
        self.channel.send(
            Attach(task_id=self.task_id, filename=filename, content_type=content_type, data=data)
        )
        return True

    def cancel_requested(self) -> bool:
        if int(self.cancel_flag.value) == self.task_id:
            self.saw_cancel = True
        return self.saw_cancel


class ForwardLogs(logging.Handler):
    """Sends the child's log records to the parent, which writes them to the worker's log."""

    def __init__(self, channel: Channel) -> None:
        super().__init__(logging.DEBUG)
        self.channel = channel
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            self.channel.send(LogLine(level=record.levelno, name=record.name, text=text))
        except Exception:  # a broken pipe means the parent is gone: nothing to log to
            self.handleError(record)


def _install_signals(terminate_flag: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def on_term(_signum: int, _frame: object) -> None:
        if terminate_flag.value:
            raise SystemExit(128 + signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_term)


def _die_with_parent(parent_pid: int) -> None:
    """End this process when the worker ends, however it ends.

    ``PR_SET_PDEATHSIG`` (Linux) has the kernel kill this process when its parent
    dies. A slot started by the fork server has the fork server as its parent:
    it gives up its copy of the server's "alive" pipe, so the fork server ends
    (and takes its slots with it) as soon as the worker is gone. A watchdog
    thread also waits on the parent's sentinel (a pipe only the worker holds
    open), and ends this process the moment it closes.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    _release_fork_server()
    parent = multiprocessing.parent_process()
    sentinel = getattr(parent, "sentinel", None)
    if parent is None or parent.pid != parent_pid or sentinel is None:
        _watch_parent_pid(parent_pid)
        return
    if wait([sentinel], 0):  # the worker is already gone
        os._exit(1)

    def watch() -> None:
        with contextlib.suppress(Exception):
            wait([sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="tasktable-parent-watch", daemon=True).start()


def _watch_parent_pid(parent_pid: int) -> None:
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="tasktable-parent-watch", daemon=True).start()


def _release_fork_server() -> None:
    """Close this process's copy of the fork server's "alive" pipe (when forked by it).

    The fork server runs until every holder of that pipe has closed it; without
    this, it would outlive a killed worker for as long as its slots do.
    """
    from multiprocessing import forkserver

    if forkserver.get_inherited_fds() is None:  # not started by the fork server
        return
    server = getattr(forkserver, "_forkserver", None)
    fd = getattr(server, "_forkserver_alive_fd", None)
    if isinstance(fd, int):
        with contextlib.suppress(OSError):
            os.close(fd)
        server._forkserver_alive_fd = None  # type: ignore[union-attr]


def _limit_memory(max_bytes: int | None) -> None:
    if not max_bytes:
        return
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))


def _setup_logging(channel: Channel, verbose: bool) -> None:
    logger = logging.getLogger("tasktable")
    for existing in list(logger.handlers):
        logger.removeHandler(existing)
    logger.addHandler(ForwardLogs(channel))
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False


def child_main(
    conn: Connection,
    config: dict[str, Any],
    cancel_flag: Any,
    terminate_flag: Any,
    events: Connection | None = None,
    gate: tuple[Any, Any, Any, Any] | None = None,
) -> None:
    """The slot process's entry point (started by :class:`~.runners.ProcessRunner`).

    Commands come in on ``conn``; events go out on ``events`` (a pipe of their
    own), or on ``conn`` too when it is a duplex connection and ``events`` None.
    Runs come one after another, several of them queued in the pipe at times. With
    ``gate`` (a lock, the number of the last run started, the number of the last run
    to skip, the number of the run that starts whatever; see ``ProcessRunner.revoke``)
    each run is numbered as it is read, and one the parent took back is answered
    ``Skipped``, not started.
    """
    _install_signals(terminate_flag)
    _die_with_parent(int(config["parent_pid"]))
    _limit_memory(config.get("max_memory"))
    channel = Channel(events if events is not None else conn)
    _setup_logging(channel, bool(config.get("verbose")))
    allowlist = Allowlist(tuple(config["handlers"]) if config["handlers"] is not None else None)
    max_file_bytes = int(config["max_file_bytes"])
    loop = asyncio.new_event_loop()
    frames = FrameReader(conn.fileno())
    runs = 0
    channel.conn.send_bytes(b'{"op":"ready"}')
    while True:
        try:
            raw = frames.read(None)
        except (EOFError, OSError):
            break
        assert raw is not None  # no timeout: a frame, or EOFError
        command = decode_message(raw)
        if isinstance(command, dict) and command.get("op") != "run":  # "stop"
            break
        runs += 1
        if gate is not None and not _may_start(gate, runs):
            task_id = command[1] if isinstance(command, list) else command["task"]["id"]
            channel.send(Skipped(task_id=int(task_id)))
            continue
        try:
            _run_one(channel, command, cancel_flag, allowlist, max_file_bytes, loop)
        except SystemExit as exc:  # stopped by the worker (SIGTERM): the handler's finally ran
            os._exit(exc.code if isinstance(exc.code, int) else 1)
    # Exit at once: the worker waits for this. Exit hooks run (a handler's module may
    # have registered some); tearing down every module does not.
    loop.close()
    atexit._run_exitfuncs()
    logging.shutdown()
    os._exit(0)


def _may_start(gate: tuple[Any, Any, Any, Any], number: int) -> bool:
    """Run ``number`` starts unless the parent took it back (under the gate's lock, so
    that the parent knows exactly which runs started)."""
    lock, started, skip_through, head = gate
    with lock:
        if number <= skip_through.value and number != head.value:
            return False
        started.value = number
        return True


def _run_one(
    channel: Channel,
    command: list[Any] | dict[str, Any],
    cancel_flag: Any,
    allowlist: Allowlist,
    max_file_bytes: int,
    loop: asyncio.AbstractEventLoop,
) -> None:
    # ["run", ...the task], or the same as an object: {"op": "run", "task": {...}}
    task = task_from_run(command) if isinstance(command, list) else task_from_json(command["task"])
    reporter = ChannelReporter(channel, task.id, cancel_flag)
    outcome, _ = execute(
        task,
        reporter,
        allowlist=allowlist,
        max_file_bytes=max_file_bytes,
        loop=loop,
        on_start=lambda timeout: channel.send(Started(task_id=task.id, timeout=timeout)),
    )
    channel.send(Done(task_id=task.id, outcome=outcome, saw_cancel=reporter.saw_cancel))
