"""Which waiting items of the queue start now (a plain function, tested as a unit).

The rule (docs/cli.md, "The queue"): items start in their order. One on GPUs starts when
none of its GPUs is used by a live run of the workspace (the queue's own or any other);
a later GPU item whose GPUs are free may start beside it or before a blocked one. An item
on the CPU or on a target runs alone: it waits until every queue item before it has
started and no queue item is running, and nothing after it starts before it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar


class Waiting(Protocol):
    """What the rule reads of a queue item."""

    target: str | None
    gpus: str


T = TypeVar("T", bound=Waiting)


def gpu_set(gpus: str) -> frozenset[str]:
    """The GPU indices of a `--gpus` value ('cpu' and '' are none)."""
    return frozenset(g.strip() for g in gpus.split(",") if g.strip() and g.strip() != "cpu")


def alone(item: Waiting) -> bool:
    """Whether the item runs alone: on the CPU here, or on a target (whose GPUs the target
    or its Slurm gives out)."""
    return bool(item.target) or not gpu_set(item.gpus)


def startable(waiting: Iterable[T], running: int, busy: Iterable[str]) -> list[T]:
    """The waiting items (in queue order) to start now.

    Args:
        waiting: the waiting items in queue order.
        running: queue items running now.
        busy: GPU indices live runs use now (the running queue items' included).
    """
    taken = set(busy)
    chosen: list[T] = []
    held_back = False  # an earlier item waits: an item that runs alone waits behind it
    for item in waiting:
        if alone(item):
            if not running and not chosen and not held_back:
                chosen.append(item)
            break  # nothing after it jumps ahead of it
        gpus = gpu_set(item.gpus)
        if gpus & taken:
            held_back = True
            continue
        chosen.append(item)
        taken |= gpus
    return chosen
