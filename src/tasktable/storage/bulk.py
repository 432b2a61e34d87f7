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
    construction but the field assignments), the object is made as an instance of
    a plain class with the same slots, which takes ordinary attribute stores, and
    then becomes a ``cls`` (``__class__`` assignment: the two layouts are the same);
    a third of the time of ``cls(...)``, whose generated ``__init__`` calls
    ``object.__setattr__`` for each field. If that cannot be done, the fields are
    set through their slot descriptors (half the time); any other class gets its
    constructor called.
    """
    given = tuple(given)
    fields = dataclasses.fields(cls)
    plain = (
        dataclasses.is_dataclass(cls)
        and isinstance(cls.__dict__.get("__slots__"), tuple)
        and not hasattr(cls, "__post_init__")
        and all(f.init for f in fields)
        and set(given) <= {f.name for f in fields}
        and len(set(given)) == len(given)
        and all(
            f.name in given
            or f.default is not dataclasses.MISSING
            or f.default_factory is not dataclasses.MISSING
            for f in fields
        )
    )
    if not plain:
        return builder_of_constructor(cls, given)
    env: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    values: list[str] = []
    for number, f in enumerate(fields):
        if f.name in given:
            values.append(f"v{given.index(f.name)}")
        elif f.default is not dataclasses.MISSING:
            env[f"_default{number}"] = f.default
            values.append(f"_default{number}")
        else:
            env[f"_factory{number}"] = f.default_factory
            values.append(f"_factory{number}()")
        env[f"_set{number}"] = cls.__dict__[f.name].__set__
    env["_twin"] = type(f"_{cls.__name__}Slots", (), {"__slots__": cls.__dict__["__slots__"]})
    params = ", ".join(f"v{i}" for i in range(len(given)))
    twin = [f"    o.{f.name} = {value}" for f, value in zip(fields, values, strict=True)]
    slots = [f"    _set{n}(o, {value})" for n, value in enumerate(values)]
    for body in (
        ["    o = _new(_twin)", *twin, "    o.__class__ = _cls"],
        ["    o = _new(_cls)", *slots],
    ):
        source = f"def build({params}):\n" + "\n".join(body) + "\n    return o\n"
        exec(source, env)  # generated from the dataclass's own fields, as dataclasses does
        build: Callable[..., Any] = env["build"]
        try:  # the same object as the constructor makes, or the next way
            sample = [object() for _ in given]
            made = build(*sample)
        except TypeError:  # the layouts differ after all
            continue
        if type(made) is cls and made == cls(**dict(zip(given, sample, strict=True))):
            return build
    return builder_of_constructor(cls, given)


def builder_of_constructor(cls: type[Any], given: Sequence[str]) -> Callable[..., Any]:
    """``cls(**dict(zip(given, values)))``, for a class :func:`builder` cannot speed up."""

    def construct(*values: Any) -> Any:
        return cls(**dict(zip(given, values, strict=True)))

    return construct


def uniform(tasks: Sequence[NewTask]) -> bool:
    """True when the tasks share everything but their args and none has a unique key."""
    return tasks[0].unique_key is None and len(set(map(_SHARED, tasks))) == 1


def json_texts(texts: Sequence[str]) -> str:
    """The args texts as one JSON array of strings: the database reads each element
    back as exactly the text given (an array of the args values themselves would be
    re-rendered by SQLite's JSON functions)."""
    return _encode_strings(texts)
