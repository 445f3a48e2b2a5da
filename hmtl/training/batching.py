"""Length-bucketed batches: padding is wasted compute, so a batch holds instances of similar length."""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from hmtl.tasks.base import Instance


def make_batches(
    instances: list[Instance], batch_size: int, rng: np.random.Generator | None = None
) -> list[list[Instance]]:
    """Batches of one namespace each (a head per namespace), sorted by length; shuffled when ``rng`` is given.

    Lengths get a little noise before sorting so that batches differ from epoch to epoch.
    """
    by_namespace: dict[str, list[Instance]] = defaultdict(list)
    for instance in instances:
        by_namespace[instance.namespace].append(instance)
    batches = []
    for group in by_namespace.values():
        lengths = np.array([len(instance.tokens) for instance in group], dtype=float)
        if rng is not None:
            lengths += rng.uniform(-1, 1, size=len(lengths))
        order = np.argsort(lengths, kind="stable")
        batches.extend([group[i] for i in order[start : start + batch_size]] for start in range(0, len(order), batch_size))
    if rng is not None:
        rng.shuffle(batches)
    return batches
