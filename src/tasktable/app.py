"""TaskTable: the front door. One object bound to a database does the seed's repository."""

from __future__ import annotations

import builtins
import contextlib
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from .core.durations import parse_duration
from .core.status import FINAL_STATUSES, TaskStatus
from .core.task import NewTask, Task, TaskFile, utc_now
from .core.validation import (
    parse_datetime,
    validate_args,
    validate_max_attempts,
    validate_name,
    validate_priority,
    validate_queue,
    validate_timeout,
    validate_unique_key,
)
from .errors import InvalidInput, SchemaMissing
from .handler import handler_defaults, handler_path, handler_rerun_on_loss, load_handler
from .inline import InlineResult, MemoryReporter
from .notice import Notice, background_notice
from .settings import Settings
from .storage.base import Page, Sort, Stats, TaskFilter
from .storage.bulk import builder
from .storage.engine import parse_url
from .storage.sql import SQLStorage

HandlerRef = Any  # a TaskHandler class, an @handler function, or an import path


class TaskTable:
    """Durable background tasks in a database table.

    >>> tt = TaskTable("sqlite:///var/tasktable.sqlite3")
    >>> task = tt.enqueue("myapp.tasks:SetMassDelivered", {"order_ids": [1, 2]})

    The embedded SQLite default creates its file and schema on first use; a
    server database must be migrated first (``tasktable migrate``).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        settings: Settings | None = None,
        auto_migrate: bool | None = None,
    ) -> None:
        self.settings = settings or Settings.from_env()
        if url is not None:
            self.settings = self.settings.replace(database_url=url)
        parse_url(self.settings.database_url)  # bad URLs fail here, before any I/O
        self._auto_migrate = auto_migrate
        self._storage: SQLStorage | None = None
        self._lock = threading.Lock()

    # -- connection ---------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.settings.database_url

    @property
    def storage(self) -> SQLStorage:
        """The storage, connected and schema-checked on first use."""
        if self._storage is None:
            with self._lock:
                if self._storage is None:
                    storage = SQLStorage(self.settings.database_url)
                    try:
                        auto = self._auto_migrate
                        if auto is None:
                            auto = storage.dialect_name == "sqlite"
                        try:
                            # A read first: migrating takes the write lock, which would
                            # wait on a caller's open write transaction on the same file.
                            storage.check_schema()
                        except SchemaMissing:
                            if not auto:
                                raise
                            storage.migrate()
                    except BaseException:
                        storage.dispose()
                        raise
                    self._storage = storage
        return self._storage

    def migrate(self) -> list[int]:
        """Create or upgrade the schema; returns the versions applied (idempotent)."""
        storage = self._storage or SQLStorage(self.settings.database_url)
        try:
            applied = storage.migrate()
        except BaseException:
            if self._storage is None:
                storage.dispose()
            raise
        self._storage = storage
        return applied

    def close(self) -> None:
        if self._storage is not None:
            self._storage.dispose()
            self._storage = None

    def __enter__(self) -> TaskTable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- enqueue ----------------------------------------------------------------
    def prepare(
        self,
        handler: HandlerRef,
        args: Any = None,
        *,
        name: str | None = None,
        queue: str = "default",
        priority: int = 0,
        delay: str | float | timedelta | None = None,
        run_at: str | datetime | None = None,
        max_attempts: int | None = None,
        timeout: float | None = None,
        unique_key: str | None = None,
        rerun_on_loss: bool | None = None,
        verify: bool = True,
    ) -> NewTask:
        """Validate everything about a task without writing it."""
        return self._prepare_text(
            self.settings.handlers.check(handler_path(handler)),
            args,
            name=name,
            queue=queue,
            priority=priority,
            delay=delay,
            run_at=run_at,
            max_attempts=max_attempts,
            timeout=timeout,
            unique_key=unique_key,
            rerun_on_loss=rerun_on_loss,
            verify=verify,
        )[0]

    def _prepare_text(
        self,
        path: str,
        args: Any = None,
        *,
        name: str | None = None,
        queue: str = "default",
        priority: int = 0,
        delay: str | float | timedelta | None = None,
        run_at: str | datetime | None = None,
        max_attempts: int | None = None,
        timeout: float | None = None,
        unique_key: str | None = None,
        rerun_on_loss: bool | None = None,
        verify: bool = True,
    ) -> tuple[NewTask, str]:
        """:meth:`prepare` of a handler path already checked against the allowlist, and
        the args as JSON text."""
        default_name, default_attempts, default_timeout = None, None, None
        default_rerun = True
        if verify:
            loaded = load_handler(path, self.settings.handlers)
            default_name, default_attempts, default_timeout = handler_defaults(loaded)
            default_rerun = handler_rerun_on_loss(loaded)
        args_value, args_text = validate_args(args, self.settings.max_args_bytes)
        if delay is not None and run_at is not None:
            raise InvalidInput("Give either a delay or a run_at time, not both.")
        when: datetime | None = None
        if delay is not None:
            when = utc_now() + parse_duration(delay)
        elif run_at is not None:
            when = parse_datetime(run_at)
        new = NewTask(
            handler=path,
            args=args_value,
            name=validate_name(name or default_name or path.rpartition(":")[2]),
            queue=validate_queue(queue),
            priority=validate_priority(priority),
            run_at=when,
            max_attempts=validate_max_attempts(
                max_attempts if max_attempts is not None else default_attempts or 1
            ),
            timeout=validate_timeout(timeout if timeout is not None else default_timeout),
            unique_key=validate_unique_key(unique_key),
            rerun_on_loss=default_rerun if rerun_on_loss is None else bool(rerun_on_loss),
        )
        return new, args_text

    def enqueue(
        self, handler: HandlerRef, args: Any = None, *, connection: Any = None, **options: Any
    ) -> Task:
        """Add one task; returns it as stored (with its id).

        ``connection`` (a SQLAlchemy Connection in a transaction) makes the insert
        part of the caller's transaction: rolled back with it.
        """
        new = self.prepare(handler, args, **options)
        return self.storage.insert([new], connection=connection)[0]

    def enqueue_many(
        self, items: Iterable[Mapping[str, Any] | NewTask], *, connection: Any = None
    ) -> list[Task]:
        """Add many tasks in one transaction (all or none).

        Each item is a :class:`NewTask` or a mapping with ``handler``, ``args`` and
        the keyword options of :meth:`enqueue`.
        """
        prepared, texts = self._prepare_many(items)
        return self.storage.insert(prepared, connection=connection, args_json=texts)

    def _prepare_many(
        self, items: Iterable[Mapping[str, Any] | NewTask]
    ) -> tuple[builtins.list[NewTask], builtins.list[str | None]]:
        """The items of :meth:`enqueue_many` validated, with their args as JSON text
        (None for a :class:`NewTask` given as is). Items with the same options (all
        but their args, and no ``delay``: it counts from now) are validated in full
        once; the next ones only have their args checked."""
        prepared: list[NewTask] = []
        texts: list[str | None] = []
        verified: dict[str, tuple[str | None, int | None, float | None]] = {}
        reruns: dict[str, bool] = {}
        paths: dict[Any, str] = {}  # a handler reference, checked once per call
        seen: dict[Any, NewTask] = {}  # the options of an item (see _options_key)
        limit = self.settings.max_args_bytes
        for index, item in enumerate(items):
            if isinstance(item, NewTask):
                self.settings.handlers.check(item.handler)  # checked at every entry
                prepared.append(item)
                texts.append(None)
                continue
            key = _options_key(item)
            like = seen.get(key) if key is not None else None
            if like is not None:
                try:
                    # not copied: the insert stores and returns the text
                    args, text = validate_args(item.get("args"), limit, copy=False)
                except InvalidInput as exc:
                    raise InvalidInput(f"Item {index}: {exc}") from None
                # no args, as ``like``: the same (immutable) task, read only by the insert
                same = not args and not like.args and type(args) is type(like.args)
                prepared.append(like if same else _new_task(like, args))
                texts.append(text)
                continue
            spec = dict(item)
            try:
                ref = spec.pop("handler")
            except KeyError:
                raise InvalidInput(f"Item {index} has no handler.") from None
            try:
                path = paths[ref]
            except (KeyError, TypeError):  # TypeError: an unhashable reference
                path = self.settings.handlers.check(handler_path(ref))
                with contextlib.suppress(TypeError):
                    paths[ref] = path
            if path not in verified and spec.get("verify", True):
                loaded = load_handler(path, self.settings.handlers)
                verified[path] = handler_defaults(loaded)
                reruns[path] = handler_rerun_on_loss(loaded)
                # an unverified item takes the defaults of a handler loaded for another
                seen.clear()
            spec["verify"] = False
            defaults = verified.get(path, (None, None, None))
            spec.setdefault("name", defaults[0])
            if spec.get("max_attempts") is None:
                spec["max_attempts"] = defaults[1]
            if spec.get("timeout") is None:
                spec["timeout"] = defaults[2]
            if spec.get("rerun_on_loss") is None:
                spec["rerun_on_loss"] = reruns.get(path)
            try:
                new, text = self._prepare_text(path, spec.pop("args", None), **spec)
            except InvalidInput as exc:
                raise InvalidInput(f"Item {index}: {exc}") from None
            prepared.append(new)
            texts.append(text)
            if key is not None:
                seen[key] = new
        return prepared, texts

    # -- read -------------------------------------------------------------------
    def get(self, task_id: int) -> Task:
        return self.storage.get(int(task_id))

    def list(
        self,
        *,
        status: str | TaskStatus | Sequence[str | TaskStatus] | None = None,
        name: str | None = None,
        handler: str | None = None,
        queue: str | Sequence[str] | None = None,
        created_after: str | datetime | None = None,
        created_before: str | datetime | None = None,
        search: str | None = None,
        sort: str = "-id",
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """One page of tasks, newest first by default; pass ``page.next_cursor`` on."""
        flt = self.filter(
            status=status,
            name=name,
            handler=handler,
            queue=queue,
            created_after=created_after,
            created_before=created_before,
            search=search,
        )
        if not 1 <= limit <= 1000:
            raise InvalidInput("limit must be between 1 and 1000.")
        return self.storage.list_tasks(flt, parse_sort(sort), limit, cursor)

    def count(self, **filters: Any) -> int:
        return self.storage.count(self.filter(**filters))

    def filter(
        self,
        *,
        ids: Sequence[int] | None = None,
        status: str | TaskStatus | Sequence[str | TaskStatus] | None = None,
        name: str | None = None,
        handler: str | None = None,
        queue: str | Sequence[str] | None = None,
        created_after: str | datetime | None = None,
        created_before: str | datetime | None = None,
        finished_after: str | datetime | None = None,
        finished_before: str | datetime | None = None,
        search: str | None = None,
    ) -> TaskFilter:
        statuses: tuple[TaskStatus, ...] = ()
        if status is not None:
            raw = [status] if isinstance(status, str | TaskStatus) else list(status)
            statuses = tuple(s if isinstance(s, TaskStatus) else TaskStatus.parse(s) for s in raw)
        queues: tuple[str, ...] = ()
        if queue is not None:
            queues = (queue,) if isinstance(queue, str) else tuple(queue)

        def when(value: str | datetime | None) -> datetime | None:
            return None if value is None else parse_datetime(value)

        return TaskFilter(
            ids=tuple(int(i) for i in ids) if ids is not None else None,
            statuses=statuses,
            name=name or None,
            handler=handler_path(handler) if handler else None,
            queues=queues,
            created_after=when(created_after),
            created_before=when(created_before),
            finished_after=when(finished_after),
            finished_before=when(finished_before),
            search=search or None,
        )

    def stats(self) -> Stats:
        return self.storage.stats()

    def read_file(self, task_id: int, filename: str) -> tuple[TaskFile, bytes]:
        return self.storage.read_file(int(task_id), filename)

    # -- change -----------------------------------------------------------------
    def save(self, task: Task) -> Task:
        """Write back the editable fields of a pending task (name, args, queue,
        priority, run_at, max_attempts, timeout). Other statuses are refused."""
        _, args_text = validate_args(task.args, self.settings.max_args_bytes)
        del args_text
        return self.storage.update_pending(
            task.id,
            {
                "name": validate_name(task.name),
                "args": task.args,
                "queue": validate_queue(task.queue),
                "priority": validate_priority(task.priority),
                "run_at": task.run_at,
                "max_attempts": validate_max_attempts(task.max_attempts),
                "timeout": validate_timeout(task.timeout),
            },
        )

    def update(self, task_id: int, **changes: Any) -> Task:
        """Change some editable fields of a pending task."""
        checks: dict[str, Callable[[Any], Any]] = {
            "name": validate_name,
            "queue": validate_queue,
            "priority": validate_priority,
            "max_attempts": validate_max_attempts,
            "timeout": validate_timeout,
            "run_at": parse_datetime,
            "args": lambda a: validate_args(a, self.settings.max_args_bytes)[0],
        }
        unknown = set(changes) - set(checks)
        if unknown:
            raise InvalidInput(f"Cannot change {', '.join(sorted(unknown))} of a task.")
        values = {key: checks[key](value) for key, value in changes.items()}
        return self.storage.update_pending(int(task_id), values)

    def delete(self, *task_ids: int) -> builtins.list[int]:
        """Delete tasks (and their files). Returns the ids that existed."""
        return self.storage.delete(self.filter(ids=task_ids))

    def retry(self, *task_ids: int) -> builtins.list[int]:
        """Move ``error``/``cancelled`` tasks back to ``pending``; returns the ids moved."""
        return self.storage.retry(self.filter(ids=task_ids))

    def cancel(self, *task_ids: int) -> tuple[builtins.list[int], builtins.list[int]]:
        """Cancel pending tasks; running ones get a cancel request.

        Returns (cancelled ids, ids asked to stop)."""
        return self.storage.cancel(self.filter(ids=task_ids))

    def clean(
        self,
        older_than: str | float | timedelta | None = None,
        *,
        statuses: Sequence[str | TaskStatus] | None = None,
        batch_size: int = 1000,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Delete finished tasks older than the retention (default 30 days), in batches."""
        age = parse_duration(older_than) if older_than is not None else self.settings.retention
        chosen = clean_statuses(statuses)
        removed = 0
        while True:
            batch = self.storage.clean(age.total_seconds(), chosen, batch_size)
            removed += len(batch)
            if progress is not None:
                progress(len(batch))
            if len(batch) < batch_size:
                return removed

    def count_cleanable(
        self,
        older_than: str | float | timedelta | None = None,
        *,
        statuses: Sequence[str | TaskStatus] | None = None,
    ) -> int:
        age = parse_duration(older_than) if older_than is not None else self.settings.retention
        return self.storage.count_cleanable(age.total_seconds(), clean_statuses(statuses))

    # -- the seed's inline branch and notice ------------------------------------------
    def run_inline(
        self, handler: HandlerRef, args: Any = None, *, name: str | None = None
    ) -> InlineResult:
        """Run the handler now, in this process, with a worker's semantics; writes nothing."""
        from .worker.executor import execute

        new = self.prepare(handler, args, name=name)
        now = utc_now()
        task = Task(
            id=0,
            name=new.name,
            handler=new.handler,
            args=new.args,
            status=TaskStatus.RUNNING,
            messages=(),
            created_at=now,
            executed_at=now,
            finished_at=None,
            action_link=None,
            queue=new.queue,
            priority=new.priority,
            run_at=now,
            attempts=1,
            max_attempts=1,
            timeout=new.timeout,
            progress=None,
            error=None,
            worker=None,
            heartbeat_at=None,
            unique_key=None,
        )
        reporter = MemoryReporter()
        outcome, value = execute(
            task,
            reporter,
            allowlist=self.settings.handlers,
            max_file_bytes=self.settings.max_file_bytes,
        )
        return InlineResult(
            name=task.name,
            handler=task.handler,
            args=task.args,
            status=outcome.status,
            messages=outcome.messages,
            error=outcome.error,
            progress=outcome.progress,
            action_link=outcome.action_link,
            files=reporter.files,
            return_value=value,
        )

    def run_or_enqueue(
        self, handler: HandlerRef, args: Any = None, *, background: bool, **options: Any
    ) -> Task | InlineResult:
        """The seed's mass action: enqueue when ``background`` (e.g. ``len(ids) > 50``),
        else run inline now."""
        if background:
            return self.enqueue(handler, args, **options)
        return self.run_inline(handler, args, name=options.get("name"))

    def notice(self, task: Task) -> Notice:
        """'"<name>" will run in the background', with a link to the task in the dashboard."""
        return background_notice(task, self.settings.dashboard_url)


#: NewTask(handler=..., args=..., ...) of the values in this order (``bulk.builder``).
_NEW_TASK = builder(
    NewTask,
    (
        "handler",
        "args",
        "name",
        "queue",
        "priority",
        "run_at",
        "max_attempts",
        "timeout",
        "unique_key",
        "rerun_on_loss",
    ),
)


def _new_task(like: NewTask, args: Any) -> NewTask:
    """``like`` with other args (already validated)."""
    new: NewTask = _NEW_TASK(
        like.handler,
        args,
        like.name,
        like.queue,
        like.priority,
        like.run_at,
        like.max_attempts,
        like.timeout,
        like.unique_key,
        like.rerun_on_loss,
    )
    return new


def _options_key(item: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """What an item of :meth:`TaskTable.enqueue_many` asks for besides its args, to
    recognise items with the same options (with each value's type: ``True == 1``);
    None when that cannot be reused: not a plain dict, an unhashable value, or a
    ``delay``, which counts from the time it is read."""
    if type(item) is not dict or item.get("delay") is not None:
        return None
    options = item.copy()
    options.pop("args", None)
    key = (tuple(options), tuple(options.values()), tuple(map(type, options.values())))
    try:
        hash(key)
    except TypeError:
        return None
    return key


def parse_sort(sort: str) -> Sort:
    text = (sort or "-id").strip()
    descending = text.startswith("-")
    return Sort(field=text.lstrip("-+"), descending=descending)


def clean_statuses(statuses: Sequence[str | TaskStatus] | None) -> tuple[TaskStatus, ...]:
    if not statuses:
        return tuple(s for s in TaskStatus if s in FINAL_STATUSES)
    chosen = tuple(s if isinstance(s, TaskStatus) else TaskStatus.parse(s) for s in statuses)
    for status in chosen:
        if status not in FINAL_STATUSES:
            raise InvalidInput(
                f"Cannot clean {status.value} tasks; only success, error and cancelled ones."
            )
    return chosen
