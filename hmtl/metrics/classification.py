"""Sentence classification scores: accuracy, per-label and macro-averaged F1, and for multi-label classification
micro-averaged F1 too. A prediction and its gold are sets of labels (one label each for single-label
classification, where micro F1 would equal accuracy); accuracy is the share of sentences whose predicted set equals
the gold set exactly (subset accuracy). Scores are in percent."""
from __future__ import annotations

from collections import Counter
from typing import Iterable

from hmtl.metrics.span_f1 import prf


class ClassificationScores:
    """Accumulates (predicted labels, gold labels) per sentence. The macro average runs over every label seen in
    the gold or the predictions (a label only ever predicted scores 0 and lowers it)."""

    def __init__(self, multi_label: bool = False) -> None:
        self.multi_label = multi_label
        self.tp: Counter = Counter()
        self.pred: Counter = Counter()
        self.gold: Counter = Counter()
        self.exact = self.total = 0

    def update(self, predicted: Iterable[str], gold: Iterable[str]) -> None:
        predicted, gold = set(predicted), set(gold)
        self.pred.update(predicted)
        self.gold.update(gold)
        self.tp.update(predicted & gold)
        self.exact += predicted == gold
        self.total += 1

    def compute(self) -> dict[str, float]:
        metrics = {"accuracy": 100.0 * self.exact / self.total if self.total else 0.0}
        labels = sorted(set(self.gold) | set(self.pred))
        per_label = {label: prf(self.tp[label], self.pred[label], self.gold[label]) for label in labels}
        for index, name in enumerate(("precision", "recall", "f1")):
            metrics[f"macro_{name}"] = sum(s[index] for s in per_label.values()) / len(labels) if labels else 0.0
        if self.multi_label:
            p, r, f = prf(sum(self.tp.values()), sum(self.pred.values()), sum(self.gold.values()))
            metrics.update({"micro_precision": p, "micro_recall": r, "micro_f1": f})
        metrics.update({f"f1_{label}": scores[2] for label, scores in per_label.items()})
        return metrics
