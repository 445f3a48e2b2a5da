"""Event extraction scores with DyGIE++'s definitions (Wadden et al. 2019, ``dygie/training/event_metrics.py``):

- ``trig_id``: a predicted trigger's span equals a gold trigger's;
- ``trig_class``: its span and event type equal a gold trigger's;
- ``arg_id``: an argument's span and the event type of its trigger equal a gold argument's span and the type of
  that argument's trigger. The trigger itself need not match: an argument attached to another trigger of the right
  type counts, as in DyGIE++ (its paper, section 3);
- ``arg_class``: the same and its role.

Each level is a set, unlike DyGIE++'s lists: a prediction made twice (one argument of two triggers of one type, or
the same span with two roles at ``arg_id``) counts once, and so does a gold one. Precision, recall and F1 in
percent, with per event type (``trig_class_f1_<type>``) and per role (``arg_class_f1_<role>``) F1. Call ``update``
once per sentence or document (with its own ``key``): spans of different calls never match.
"""
from __future__ import annotations

from typing import Hashable, Iterable

from hmtl.data.document import Event
from hmtl.metrics.span_f1 import SpanF1

LEVELS = ("trig_id", "trig_class", "arg_id", "arg_class")


def event_keys(events: Iterable[Event], key: Hashable) -> dict[str, set[tuple]]:
    """What each level compares, as sets of tuples whose last item is the label ``SpanF1`` reports F1 by."""
    found: dict[str, set[tuple]] = {level: set() for level in LEVELS}
    for event in events:
        trigger = event.trigger
        found["trig_id"].add((key, trigger.start, trigger.end, "trigger"))
        found["trig_class"].add((key, trigger.start, trigger.end, trigger.label))
        for argument in event.arguments:
            found["arg_id"].add((key, argument.start, argument.end, trigger.label))
            found["arg_class"].add((key, argument.start, argument.end, trigger.label, argument.label))
    return found


class EventF1:
    """``compute`` gives ``<level>_{precision,recall,f1}`` for the four levels, plus the per-label F1 of the two
    classification levels."""

    def __init__(self) -> None:
        self.levels = {level: SpanF1() for level in LEVELS}

    def update(self, predicted: Iterable[Event], gold: Iterable[Event], key: Hashable = None) -> None:
        predicted_keys, gold_keys = event_keys(predicted, key), event_keys(gold, key)
        for level, metric in self.levels.items():
            metric.update(predicted_keys[level], gold_keys[level])

    def compute(self) -> dict[str, float]:
        metrics = {}
        for level, metric in self.levels.items():
            for name, value in metric.compute().items():
                if level.endswith("_class") or not name.startswith("f1_"):
                    metrics[f"{level}_{name}"] = value
        return metrics
