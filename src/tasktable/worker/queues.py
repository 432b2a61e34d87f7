"""Which queues a worker claims from, and in which order. Pure.

``--queue mail --queue reports`` (no weights): one claim over both queues,
higher priority first, then oldest first. ``--ordered``: ``mail`` first, and
``reports`` only with the slots ``mail`` leaves free. ``--queue mail=3
--queue reports=1``: each claim starts with a queue picked at random in
proportion to the weights (here mail three times in four), then fills the
remaining slots from the others in the same weighted way, so no queue
starves while it has work and a slot is free.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from ..core.validation import validate_queue
from ..errors import InvalidInput

MAX_WEIGHT = 1000


@dataclass(frozen=True)
class QueuePlan:
    names: tuple[str, ...] = ()
    weights: tuple[int, ...] | None = None
    ordered: bool = False

    @classmethod
    def parse(cls, values: Sequence[str], *, ordered: bool = False) -> QueuePlan:
        """From ``--queue`` values: ``name`` or ``name=weight``, also comma-separated."""
        names: list[str] = []
        weights: list[int] = []
        weighted = False
        for value in values:
            for item in value.split(","):
                if not item.strip():
                    continue
                name, sep, weight_text = item.strip().partition("=")
                name = validate_queue(name)
                weight = 1
                if sep:
                    weighted = True
                    try:
                        weight = int(weight_text)
                    except ValueError:
                        weight = 0
                    if not 1 <= weight <= MAX_WEIGHT:
                        raise InvalidInput(
                            f"Queue weight {weight_text!r} of {name!r} must be a whole number "
                            f"from 1 to {MAX_WEIGHT}."
                        )
                if name in names:
                    raise InvalidInput(f"Queue {name!r} is given twice.")
                names.append(name)
                weights.append(weight)
        if weighted and ordered:
            raise InvalidInput("Give queue weights or --ordered, not both.")
        return cls(tuple(names), tuple(weights) if weighted else None, ordered)

    def rounds(self, rng: random.Random | None = None) -> list[tuple[str, ...]]:
        """The queue groups to claim from, in order, for one fill of the free slots.
        ``()`` means every queue."""
        if not self.names:
            return [()]
        if self.weights is not None:
            pick = rng or random
            left = list(zip(self.names, self.weights, strict=True))
            order: list[tuple[str, ...]] = []
            while left:
                total = sum(w for _, w in left)
                point = pick.uniform(0, total)
                for i, (name, weight) in enumerate(left):
                    point -= weight
                    if point <= 0 or i == len(left) - 1:
                        order.append((name,))
                        del left[i]
                        break
            return order
        if self.ordered:
            return [(name,) for name in self.names]
        return [self.names]

    def describe(self) -> str:
        if not self.names:
            return "all"
        if self.weights is not None:
            return ",".join(f"{n}={w}" for n, w in zip(self.names, self.weights, strict=True))
        return (" > " if self.ordered else ",").join(self.names)
