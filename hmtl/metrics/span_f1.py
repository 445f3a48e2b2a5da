"""Exact-match span F1 (conlleval semantics once tags are decoded into spans): a prediction counts only when
its start, end and type all equal a gold span's. Reports micro F1 over types plus per-type F1."""
from __future__ import annotations

from collections import Counter
from typing import Hashable, Iterable


def prf(tp: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    """Precision, recall and F1 in percent (0 where undefined), as conlleval prints them."""
    precision = 100.0 * tp / n_pred if n_pred else 0.0
    recall = 100.0 * tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


class SpanF1:
    """Accumulates predicted and gold spans; each span is any hashable tuple whose last item is its type,
    e.g. ``(sentence_id, start, end, "PER")``."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.tp: Counter = Counter()
        self.pred: Counter = Counter()
        self.gold: Counter = Counter()

    def update(self, predicted: Iterable[Hashable], gold: Iterable[Hashable]) -> None:
        predicted, gold = set(predicted), set(gold)
        for span in predicted:
            self.pred[span[-1]] += 1
        for span in gold:
            self.gold[span[-1]] += 1
        for span in predicted & gold:
            self.tp[span[-1]] += 1

    def compute(self) -> dict[str, float]:
        p, r, f = prf(sum(self.tp.values()), sum(self.pred.values()), sum(self.gold.values()))
        metrics = {"precision": p, "recall": r, "f1": f}
        for label in sorted(set(self.gold) | set(self.pred)):
            metrics[f"f1_{label}"] = prf(self.tp[label], self.pred[label], self.gold[label])[2]
        return metrics
