"""Relation extraction F1 in the two settings of Taillé et al. (2020) / SpERT:

- **strict**: a predicted relation is correct when its label, both argument spans (exact boundaries) and both
  argument entity types equal a gold relation's;
- **boundaries**: the same, except that the argument entity types are ignored.

Each is reported micro-averaged (pooled counts over all relation labels) and macro-averaged (the mean of the
per-label precision, recall and F1, as scikit-learn's ``average="macro"``). Scores are in percent.

A relation is ``(head, tail, label)`` where ``head`` and ``tail`` are ``(start, end, type)`` tuples, or an
``hmtl.data.document.Relation`` whose arguments are typed ``Span``s. Relations are directed. Call ``update`` once
per sentence or document (relations of different calls never match each other); within one call, duplicates
count once.
"""
from __future__ import annotations

from collections import Counter
from typing import Hashable, Iterable

from hmtl.metrics.span_f1 import prf

MODES = ("strict", "boundaries")


def _argument(span) -> tuple[Hashable, Hashable, Hashable]:
    if hasattr(span, "bounds"):
        return (span.start, span.end, span.label)
    start, end, entity_type = span
    return (start, end, entity_type)


def relation_keys(relation, mode: str) -> tuple:
    """The tuple two relations must share to match in ``mode``; its last item is the relation label."""
    if hasattr(relation, "head") and hasattr(relation, "tail"):
        head, tail, label = relation.head, relation.tail, relation.label
    else:
        head, tail, label = relation
    head, tail = _argument(head), _argument(tail)
    if mode == "strict":
        return (head, tail, label)
    if mode == "boundaries":
        return (head[:2], tail[:2], label)
    raise ValueError(f"unknown relation matching mode {mode!r}; known: {', '.join(MODES)}")


class RelationF1:
    """Accumulates predicted and gold relations. ``labels`` fixes the label inventory the macro average runs
    over; by default it is every label seen in the gold or the predictions (a label never in the gold but
    predicted scores 0 and lowers the macro average; a label in neither never appears).

    ``compute`` returns ``{strict,boundaries}_{micro,macro}_{precision,recall,f1}`` and the per-label strict F1
    as ``strict_f1_<label>``."""

    def __init__(self, labels: Iterable[str] | None = None) -> None:
        self.labels = None if labels is None else list(labels)
        self.reset()

    def reset(self) -> None:
        self.counts = {mode: {"tp": Counter(), "pred": Counter(), "gold": Counter()} for mode in MODES}

    def update(self, predicted: Iterable, gold: Iterable) -> None:
        predicted, gold = list(predicted), list(gold)
        for mode in MODES:
            counts = self.counts[mode]
            predicted_keys = {relation_keys(r, mode) for r in predicted}
            gold_keys = {relation_keys(r, mode) for r in gold}
            for key in predicted_keys:
                counts["pred"][key[-1]] += 1
            for key in gold_keys:
                counts["gold"][key[-1]] += 1
            for key in predicted_keys & gold_keys:
                counts["tp"][key[-1]] += 1

    def _labels(self) -> list:
        if self.labels is not None:
            return self.labels
        seen = set()
        for counts in self.counts.values():
            seen |= set(counts["gold"]) | set(counts["pred"])
        return sorted(seen, key=str)

    def compute(self) -> dict[str, float]:
        labels = self._labels()
        metrics: dict[str, float] = {}
        for mode in MODES:
            tp, pred, gold = (self.counts[mode][k] for k in ("tp", "pred", "gold"))
            p, r, f = prf(sum(tp.values()), sum(pred.values()), sum(gold.values()))
            metrics.update({f"{mode}_micro_precision": p, f"{mode}_micro_recall": r, f"{mode}_micro_f1": f})
            per_label = [prf(tp[label], pred[label], gold[label]) for label in labels]
            for index, name in enumerate(("precision", "recall", "f1")):
                values = [scores[index] for scores in per_label]
                metrics[f"{mode}_macro_{name}"] = sum(values) / len(values) if values else 0.0
            if mode == "strict":
                for label, scores in zip(labels, per_label):
                    metrics[f"strict_f1_{label}"] = scores[2]
        return metrics
