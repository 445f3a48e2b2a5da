"""Length-bucketed batches: padding is wasted compute, so a batch holds instances of similar length."""
from __future__ import annotations

from collections import defaultdict
from typing import Callable

import numpy as np

from hmtl.config import TaskGroup, split_namespace
from hmtl.tasks.base import Instance


def make_batches(
    instances: list[Instance], batch_size: int, rng: np.random.Generator | None = None,
    length: Callable[[Instance], int] = lambda instance: len(instance.tokens),
) -> list[list[Instance]]:
    """Batches of one namespace each (a head per namespace), sorted by ``length`` (words by default; prediction
    with a transformer sorts by subwords, which is what it pays for); shuffled when ``rng`` is given.

    Lengths get a little noise before sorting so that batches differ from epoch to epoch.
    """
    by_namespace: dict[str, list[Instance]] = defaultdict(list)
    for instance in instances:
        by_namespace[instance.namespace].append(instance)
    batches = []
    for group in by_namespace.values():
        lengths = np.array([length(instance) for instance in group], dtype=float)
        if rng is not None:
            lengths += rng.uniform(-1, 1, size=len(lengths))
        order = np.argsort(lengths, kind="stable")
        batches.extend([group[i] for i in order[start : start + batch_size]] for start in range(0, len(order), batch_size))
    if rng is not None:
        rng.shuffle(batches)
    return batches


def _unit(instance: Instance) -> tuple[str, tuple]:
    """What an instance reads: its dataset and its place there (document, sentence), the same for every task."""
    return split_namespace(instance.namespace)[0], instance.source


def group_batches(
    group: TaskGroup, instances: dict[str, list[Instance]], batch_size: int, rng: np.random.Generator | None = None
) -> list[dict[str, list[Instance]]]:
    """A chain group's batches, each ``{task: instances}``: one task's batches, or for tasks joined by ``&``
    batches of the first task's units with the same units of the other tasks in the same order."""
    (first, datasets), *others = group.members
    units = [i for i in instances.get(first, []) if _unit(i)[0] in datasets]
    if not others:
        return [{first: batch} for batch in make_batches(units, batch_size, rng)]
    by_unit = {task: {_unit(i): i for i in instances.get(task, [])} for task, _ in others}
    units = [i for i in units if all(_unit(i) in found for found in by_unit.values())]
    return [
        {first: batch, **{task: [found[_unit(i)] for i in batch] for task, found in by_unit.items()}}
        for batch in make_batches(units, batch_size, rng)
    ]
