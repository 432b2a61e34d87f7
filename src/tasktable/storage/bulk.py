"""What a bulk enqueue repeats for every task, done once or at C speed.

* :func:`builder`: a frozen dataclass built without its generated ``__init__``,
  which sets each field through ``object.__setattr__`` (a :class:`Task` has 25:
  building the returned tasks was a fifth of an ``enqueue_many``).
* :func:`uniform`: whether the tasks of a batch differ only in their args; such a
  batch is inserted with its shared values bound once and only the args per row.
* :func:`json_texts`: the args of a batch as one parameter.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any

from ..core.task import NewTask

#: What a task of a batch has beyond its args (all hashable, as validated).
_SHARED = attrgetter(
    "name",
    "handler",
    "queue",
    "priority",
    "run_at",
    "max_attempts",
    "timeout",
    "unique_key",
    "rerun_on_loss",
)
_encode_strings = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def builder(cls: type[Any], given: Sequence[str]) -> Callable[..., Any]:
    """A function taking the values of the fields ``given``, in that order, and
    returning ``cls(**dict(zip(given, values)))``; other fields take their defaults.

    For a slotted frozen dataclass without ``__post_init__`` (nothing runs at
    construction but the field assignments), the fields are set through their slot
    descriptors, which is what ``object.__setattr__`` ends up doing, in about half
    the time. Any other class gets its constructor called.
    """
    given = tuple(given)
    fields = dataclasses.fields(cls)
    names = {f.name for f in fields}
    plain = (
        dataclasses.is_dataclass(cls)
        and "__slots__" in cls.__dict__
        and not hasattr(cls, "__post_init__")
        and all(f.init for f in fields)
        and set(given) <= names
        and len(set(given)) == len(given)
        and all(
            f.name in given
            or f.default is not dataclasses.MISSING
            or f.default_factory is not dataclasses.MISSING
            for f in fields
        )
    )
    if not plain:

        def construct(*values: Any) -> Any:
            return cls(**dict(zip(given, values, strict=True)))

        return construct
    env: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    lines = ["    o = _new(_cls)"]
    for number, f in enumerate(fields):
        env[f"_set{number}"] = cls.__dict__[f.name].__set__
        if f.name in given:
            value = f"v{given.index(f.name)}"
        elif f.default is not dataclasses.MISSING:
            env[f"_default{number}"] = f.default
            value = f"_default{number}"
        else:
            env[f"_factory{number}"] = f.default_factory
            value = f"_factory{number}()"
        lines.append(f"    _set{number}(o, {value})")
    params = ", ".join(f"v{i}" for i in range(len(given)))
    source = f"def build({params}):\n" + "\n".join(lines) + "\n    return o\n"
    exec(source, env)  # generated from the dataclass's own fields, as dataclasses does
    build: Callable[..., Any] = env["build"]
    return build


def uniform(tasks: Sequence[NewTask]) -> bool:
    """True when the tasks share everything but their args and none has a unique key."""
    return tasks[0].unique_key is None and len(set(map(_SHARED, tasks))) == 1


def json_texts(texts: Sequence[str]) -> str:
    """The args texts as one JSON array of strings: the database reads each element
    back as exactly the text given (an array of the args values themselves would be
    re-rendered by SQLite's JSON functions)."""
    return _encode_strings(texts)
