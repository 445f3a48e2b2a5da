"""Length-bucketed batches (padding is wasted compute, so a batch holds instances of similar length), and their
collation into tensors ahead of the model (``collated``: a DataLoader, with worker processes when asked)."""
from __future__ import annotations

import multiprocessing
from collections import defaultdict
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from hmtl.config import TaskGroup, split_namespace
from hmtl.tasks.base import Instance

if TYPE_CHECKING:
    from hmtl.model import Batch, HierarchicalModel

Heads = list[tuple[str, list[Instance]]]  # one batch before collation: (task, instances) over the same units


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


class _Collation(Dataset):
    """Batch ``i``'s tensors (``HierarchicalModel.collate_tensors``): what a worker computes and sends back."""

    def __init__(self, model: "HierarchicalModel", batches: list[Heads]):
        self.model, self.batches = model, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> tuple[dict, list[dict]]:
        heads = self.batches[i]
        return self.model.collate_tensors(heads[0][1], heads)


def _as_is(item):
    return item


def _one_thread(_: int) -> None:
    torch.set_num_threads(1)  # a worker builds small tensors: its threads would only compete with the model's


def collated(model: "HierarchicalModel", batches: list[Heads], num_workers: int = 0) -> Iterator["Batch"]:
    """``batches`` collated in order, each on the model's device: in this process (``num_workers`` 0), or in
    worker processes that run ahead of the model. Workers send tensors only; the instances stay here, so what the
    model records in them (a frozen transformer's cache handles) is kept for the next epoch."""
    from hmtl.model import Batch

    if not batches:
        return
    device = model.device
    workers = {"num_workers": num_workers, "worker_init_fn": _one_thread, "prefetch_factor": 4}
    if "fork" in multiprocessing.get_all_start_methods():  # copy-on-write: the instances are not pickled
        workers["multiprocessing_context"] = "fork"
    # its own generator: a DataLoader draws a seed when it starts, which must not move the model's random stream
    # (a resumed epoch starts one mid-way, and must see the dropout masks the uninterrupted run saw)
    loader = DataLoader(_Collation(model, batches), batch_size=None, collate_fn=_as_is, generator=torch.Generator(),
                        pin_memory=device.type == "cuda", **(workers if num_workers else {}))
    for heads, tensors in zip(batches, loader):
        yield Batch.of(heads[0][1], heads, tensors).to(device)
