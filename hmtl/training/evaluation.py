"""Decoding and scoring, shared by validation during training and by evaluate.py."""
from __future__ import annotations

import logging
from collections import Counter, defaultdict
from statistics import mean
from typing import Callable, Iterator

from tqdm import tqdm

from hmtl.model import HierarchicalModel
from hmtl.tasks.base import Instance
from hmtl.training.batching import collated, make_batches

logger = logging.getLogger(__name__)


def decoded(
    model: HierarchicalModel,
    instances: dict[str, list[Instance]],
    batch_size: int,
    description: str,
    num_workers: int = 0,
) -> Iterator[tuple[str, str, list, list[Instance]]]:
    """Every batch of every task decoded, in eval mode and the precision the model trains in
    (``inference_precision``): (task name, namespace, predictions, the batch's instances)."""
    was_training = model.training
    model.eval()
    try:
        with model.inference_precision():
            for task_name, task_instances in instances.items():
                task = model.task(task_name)
                batches = [[(task_name, batch)] for batch in make_batches(task_instances, task.batch_size(batch_size))]
                for batch in tqdm(collated(model, batches, num_workers), total=len(batches),
                                  desc=f"{description} {task_name}", leave=False, disable=None):
                    head = batch.heads[0][1]
                    yield task_name, head.namespace, model.decode_heads(batch)[0], head.instances
    finally:
        model.train(was_training)


def evaluate(
    model: HierarchicalModel,
    instances: dict[str, list[Instance]],
    batch_size: int,
    description: str = "evaluating",
    num_workers: int = 0,
    relabel: dict[str, Callable[[str], str | None]] | None = None,
) -> dict[str, float]:
    """Metrics of every task on its instances (on the model's device): ``<namespace>_<metric>``,
    ``MEAN__<task>_<metric>``, and ``MEAN__all``, the mean of each task's main metric (the first of its
    ``metric_names``), for model selection. ``relabel``: per namespace, the type mapping its predictions go through
    before they are scored, the one its gold was read with (evaluate.py's ``--label_map`` / ``--keep_labels``): a
    type left out of the gold must be left out of the predictions too, or every prediction of it is a false
    positive."""
    relabel = relabel or {}
    scorers = {name: {ns: model.task(name).new_scorer() for ns in model.task(name).namespaces} for name in instances}
    for task_name, ns, predictions, batch in decoded(model, instances, batch_size, description, num_workers):
        if ns in relabel:
            predictions = [model.task(task_name).relabel(p, relabel[ns]) for p in predictions]
        scorers[task_name][ns].update(predictions, batch)
    metrics: dict[str, float] = {}
    for task_name, task_instances in instances.items():
        present = {instance.namespace for instance in task_instances}
        metrics.update(model.task(task_name).summarize(
            {ns: s.compute() for ns, s in scorers[task_name].items() if ns in present}))
    main = [metrics[f"MEAN__{name}_{model.task(name).metric_names[0]}"] for name in instances]
    metrics["MEAN__all"] = mean(main)
    return metrics


def tune(model: HierarchicalModel, instances: dict[str, list[Instance]], batch_size: int,
         num_workers: int = 0) -> dict[str, dict]:
    """The heads that tune decision settings (``Task.tunes``, e.g. a classifier's ``tune_thresholds``) choose
    them on ``instances`` (the validation split); returns the chosen options per task, now in the model's config."""
    names = [name for name, found in instances.items() if found and model.task(name).tunes]
    pairs: dict[str, dict[str, list]] = {name: defaultdict(list) for name in names}
    for task_name, ns, predictions, batch in decoded(model, {n: instances[n] for n in names}, batch_size, "tuning",
                                                      num_workers):
        pairs[task_name][ns].extend(zip(predictions, batch))
    chosen = {name: model.tune(name, dict(pairs[name])) for name in names}
    for name, options in chosen.items():
        logger.info("%s: chosen on the validation split: %s", name, options)
    return chosen


def unknown_gold_types(model: HierarchicalModel, documents: dict[str, list]) -> dict[str, dict[str, int]]:
    """Per namespace with gold documents, the gold entity types its head cannot predict (with their counts):
    scoring a model on another corpus counts them as misses, which the user should be told."""
    found = {}
    for task in model.tasks.values():
        for dataset, ns in zip(task.datasets, task.namespaces):
            known = task.entity_types(ns)
            if known is None or dataset not in documents:
                continue
            gold = Counter(span.label for document in documents[dataset] for span in document.entities)
            unknown = {label: n for label, n in gold.items() if label not in known}
            if unknown:
                found[ns] = unknown
    return found


def log_unreachable(model: HierarchicalModel, instances: dict[str, list[Instance]], split: str) -> None:
    """One warning per namespace whose gold holds what its head can never predict (spans longer than its
    ``max_width``): the user should know they are not trained on, and that scoring counts them as misses."""
    for name, found in instances.items():
        by_namespace: dict[str, list[Instance]] = defaultdict(list)
        for instance in found:
            by_namespace[instance.namespace].append(instance)
        for ns, group in by_namespace.items():
            note = model.task(name).unreachable(group)
            if note:
                logger.warning("%s %s: %s; the head cannot predict them: not trained on, scored as misses", ns, split, note)
