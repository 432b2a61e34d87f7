"""Periodic tasks: enqueued on cron ticks, once per tick however many workers run.

Declare them in code (a list of :class:`Periodic` given to the worker, or
named by ``module:attribute``) or in a TOML or JSON file::

    [[periodic]]
    name = "nightly-report"
    cron = "0 3 * * *"            # UTC
    handler = "myapp.tasks:NightlyReport"
    args = {format = "csv"}

and run workers with ``--periodic FILE_OR_MODULE:ATTR`` (``TASKTABLE_PERIODIC``).
Every worker runs the scheduler; each tick is taken by one of them in one
transaction that records the tick in ``tasktable_periodic`` and inserts the
task (with the unique key ``periodic:<name>:<tick>``). A tick missed while no
worker ran is enqueued once when one comes back (only the latest); a periodic
task seen for the first time starts with the next tick.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.cron import Cron
from ..core.task import NewTask, Task
from ..errors import InvalidInput, TaskTableError
from ..storage.base import Storage

if TYPE_CHECKING:
    from ..app import TaskTable

log = logging.getLogger("tasktable.worker")

_NAME = re.compile(r"^[A-Za-z0-9_.:\-]{1,100}$")
#: A tick younger than this when a periodic task is first seen is still enqueued.
FRESH_SECONDS = 60.0
SCHEDULER_INTERVAL = 2.0  # seconds between looks at the clock
RESERVED_PREFIX = "tasktable:"


@dataclass(frozen=True, kw_only=True)
class Periodic:
    """A task to enqueue on every tick of ``cron`` (five fields, UTC)."""

    name: str
    cron: str
    handler: str
    args: Any = None
    queue: str = "default"
    priority: int = 0
    max_attempts: int | None = None
    timeout: float | None = None

    @classmethod
    def from_mapping(cls, data: Any, where: str) -> Periodic:
        if isinstance(data, Periodic):
            return data
        if not isinstance(data, dict):
            raise InvalidInput(f"{where}: a periodic task is a table with name, cron, handler.")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - fields
        if unknown:
            raise InvalidInput(f"{where}: unknown key(s) {', '.join(sorted(unknown))}.")
        missing = {"name", "cron", "handler"} - set(data)
        if missing:
            raise InvalidInput(f"{where}: missing {', '.join(sorted(missing))}.")
        return cls(**data)


def load_periodic(spec: str) -> list[Periodic]:
    """Periodic tasks from a ``.toml`` or ``.json`` file, or a ``module:attribute``
    naming a list of :class:`Periodic` (or of mappings)."""
    path = Path(spec)
    if path.suffix.lower() in (".toml", ".json"):
        import tomllib  # only for a file of periodic tasks: a worker without one never loads it

        try:
            raw = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"Cannot read the periodic tasks file {spec}: {exc}.") from None
        try:
            data = tomllib.loads(raw) if path.suffix.lower() == ".toml" else json.loads(raw)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
            raise InvalidInput(f"The periodic tasks file {spec} is not valid: {exc}.") from None
        items = data.get("periodic", []) if isinstance(data, dict) else data
    else:
        module_name, _, attr = spec.partition(":")
        if not module_name or not attr:
            raise InvalidInput(
                f"--periodic {spec!r}: give a .toml or .json file, or module:attribute."
            )
        try:
            items = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise InvalidInput(f"--periodic {spec!r} cannot be loaded: {exc}.") from None
    if not isinstance(items, list | tuple):
        raise InvalidInput(f"--periodic {spec!r}: expected a list of periodic tasks.")
    return [Periodic.from_mapping(item, f"{spec} item {i + 1}") for i, item in enumerate(items)]


@dataclass(frozen=True)
class Planned:
    periodic: Periodic
    cron: Cron
    task: NewTask


def plan(table: TaskTable, periodics: Iterable[Periodic]) -> list[Planned]:
    """Validate each periodic task (cron, handler, args) once, at worker start."""
    planned: list[Planned] = []
    seen: set[str] = set()
    for p in periodics:
        if not _NAME.match(p.name) or p.name.startswith(RESERVED_PREFIX):
            raise InvalidInput(
                f"Periodic task name {p.name!r} must be 1-100 letters, digits or ._:- "
                f"and not start with {RESERVED_PREFIX!r}."
            )
        if p.name in seen:
            raise InvalidInput(f"Two periodic tasks are named {p.name!r}.")
        seen.add(p.name)
        try:
            cron = Cron.parse(p.cron)
            new = table.prepare(
                p.handler,
                p.args,
                queue=p.queue,
                priority=p.priority,
                max_attempts=p.max_attempts,
                timeout=p.timeout,
            )
        except TaskTableError as exc:
            raise InvalidInput(f"Periodic task {p.name!r}: {exc}") from None
        planned.append(Planned(p, cron, new))
    return planned


def tick_key(name: str, tick: datetime) -> str:
    return f"periodic:{name}:{tick.strftime('%Y-%m-%dT%H:%MZ')}"


class Scheduler:
    """Enqueues due ticks; ``run_once()`` is one look at the (database's) clock."""

    def __init__(
        self,
        storage: Storage,
        planned: Sequence[Planned],
        *,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.storage = storage
        self.planned = list(planned)
        self.now = now or storage.server_now
        self.done: dict[str, datetime] = {}  # name -> the last tick this worker handled
        self.enqueued = 0

    def run_once(self) -> list[Task]:
        if not self.planned:
            return []
        now = self.now()
        created: list[Task] = []
        for item in self.planned:
            name = item.periodic.name
            due = item.cron.latest(now)
            if due is None or self.done.get(name) == due:
                continue
            fresh = (now - due).total_seconds() <= FRESH_SECONDS
            task = dataclasses.replace(item.task, unique_key=tick_key(name, due))
            won, inserted = self.storage.take_tick(name, due, task, enqueue_if_new=fresh)
            self.done[name] = due
            if inserted is not None:
                self.enqueued += 1
                created.append(inserted)
                log.info("Periodic task %s: enqueued task %s for %s", name, inserted.id, due)
            elif won:
                log.info("Periodic task %s: first seen; its next tick will be enqueued", name)
        return created
