"""Decoding and scoring, shared by validation during training and by evaluate.py."""
from __future__ import annotations

from collections import Counter
from statistics import mean

from tqdm import tqdm

from hmtl.device import autocast
from hmtl.model import HierarchicalModel
from hmtl.tasks.base import Instance
from hmtl.training.batching import collated, make_batches


def evaluate(
    model: HierarchicalModel,
    instances: dict[str, list[Instance]],
    batch_size: int,
    description: str = "evaluating",
    bf16: bool = False,
    fp16: bool = False,
    num_workers: int = 0,
) -> dict[str, float]:
    """Metrics of every task on its instances (on the model's device): ``<namespace>_<metric>``,
    ``MEAN__<task>_<metric>``, and ``MEAN__all``, the mean of each task's main metric (the first of its
    ``metric_names``), for model selection."""
    was_training = model.training
    model.eval()
    metrics: dict[str, float] = {}
    with autocast(model.device, bf16, fp16):
        for task_name, task_instances in instances.items():
            task = model.task(task_name)
            scorers = {ns: task.new_scorer() for ns in task.namespaces}
            batches = [[(task_name, batch)] for batch in make_batches(task_instances, task.batch_size(batch_size))]
            for batch in tqdm(collated(model, batches, num_workers), total=len(batches), desc=f"{description} {task_name}",
                              leave=False, disable=None):
                head = batch.heads[0][1]
                scorers[head.namespace].update(model.decode_heads(batch)[0], head.instances)
            present = {instance.namespace for instance in task_instances}
            metrics.update(task.summarize({ns: s.compute() for ns, s in scorers.items() if ns in present}))
    model.train(was_training)
    main = [metrics[f"MEAN__{name}_{model.task(name).metric_names[0]}"] for name in instances]
    metrics["MEAN__all"] = mean(main)
    return metrics


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
