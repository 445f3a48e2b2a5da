"""Event extraction (DyGIE++'s ``events``, PHEE): triggers, then the arguments of each trigger.

Triggers are typed spans of up to ``max_width`` tokens, classified as the span classifier types entities (with
``flat``, the best non-overlapping ones are kept). Arguments are pairs: for each trigger, the ``argument_ratio`` x
sentence length spans (up to ``max_argument_width`` tokens) that an argument scorer ranks highest survive (pruning,
as DyGIE++), and each (trigger, span) pair gets an independent sigmoid per role, so one span may hold two roles
(PHEE's ``Treatment`` and ``Treatment.Drug`` often share a span) and the arguments of one event may nest. A pair is
[trigger ; argument ; trigger * argument ; max-pooled tokens between them ; the trigger's type distribution]: the
roles an event takes depend on its type.

Decoding is end to end: predicted triggers, then their arguments among the pruned spans. Training pairs each gold
trigger with the gold argument spans and the pruned spans (the negatives the decoder will meet); the argument
scorer learns whether a span is an argument of any event of its sentence. Gold triggers or arguments longer than
the widths cannot be enumerated and are left out of training (and count as misses when scoring).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from hmtl.config import TaskConfig, namespace
from hmtl.data.document import Document, Event, Span
from hmtl.metrics.event import EventF1
from hmtl.modules.spans import SpanExtractor, enumerate_spans, feedforward, pool_between, prune, span_count, span_tensor
from hmtl.registry import TASKS
from hmtl.tasks.base import Instance, Task, TaskBatch, sentence_context, span_json
from hmtl.tasks.span_classifier import NULL, SpanClassifier, _shift


@dataclass
class EventTarget:
    """A sentence's gold events, offsets relative to the sentence; ``entities`` holds their typed triggers, which is
    what the span classifier's tensors read."""

    lengths: list[int]
    entities: list[Span]
    events: list[Event]


def event_instances(documents: list[Document], ns: str) -> list[Instance]:
    """One instance per sentence (events never cross one), except the sentences marked ``unannotated``."""
    instances = []
    for doc in documents:
        offsets = doc.sentence_offsets()
        by_sentence: list[list[Event]] = [[] for _ in doc.sentences]
        for event in doc.events:
            by_sentence[doc.sentence_of(event.trigger.start, offsets)].append(event)
        for index, (offset, sentence) in enumerate(zip(offsets, doc.sentences)):
            if not sentence or index in doc.unannotated:
                continue
            events = [Event(_shift(e.trigger, offset), tuple(_shift(a, offset) for a in e.arguments))
                      for e in by_sentence[index]]
            target = EventTarget([len(sentence)], sorted({e.trigger for e in events}), events)
            instances.append(Instance(sentence, ns, target, source=(doc.doc_id, index), context=sentence_context(doc, index)))
    return instances


class EventScorer:
    def __init__(self) -> None:
        self.metric = EventF1()

    def update(self, predictions: list[list[Event]], batch: list[Instance]) -> None:
        for events, instance in zip(predictions, batch):
            self.metric.update(events, instance.target.events, instance.source)

    def compute(self) -> dict[str, float]:
        return self.metric.compute()


@TASKS.register("event")
class EventExtractor(SpanClassifier):
    metric_names = ("arg_class_f1", "trig_class_f1", "arg_id_f1", "trig_id_f1")

    class Options(SpanClassifier.Options):
        max_width: int = Field(default=5, ge=1, description="the longest trigger, in tokens")
        flat: bool = Field(default=True, description="keep the best non-overlapping triggers")
        unit: Literal["sentence"] = Field(default="sentence", description="an instance is a sentence")
        max_argument_width: int = Field(default=10, ge=1, description="the longest argument, in tokens")
        argument_ratio: float = Field(default=0.8, gt=0, description=(
            "argument candidates kept per sentence token, by the argument scorer (DyGIE++'s 0.8)"))
        argument_weight: float = Field(default=1.0, ge=0, description="weight of the argument losses")

    def __init__(self, config: TaskConfig, input_dim: int, labels: dict[str, dict[str, list[str]]]):
        super().__init__(config, input_dim, {ns: both["triggers"] for ns, both in labels.items()})
        self.labels = labels
        options = self.options
        self.argument_extractor = SpanExtractor(input_dim, options.max_argument_width)
        span_dim = self.argument_extractor.output_dim  # the trigger extractor's too: both are 3 x input + width
        self.argument_scorers = nn.ModuleDict({
            ns: feedforward(span_dim, options.hidden_size, 1, options.dropout) for ns in labels
        })
        self.role_classifiers = nn.ModuleDict({
            ns: feedforward(3 * span_dim + input_dim + len(both["triggers"]), options.hidden_size, len(both["roles"]),
                            options.dropout)
            for ns, both in labels.items()
        })
        self.role_index = {ns: {role: i for i, role in enumerate(both["roles"])} for ns, both in labels.items()}

    @classmethod
    def label_sets(cls, config: TaskConfig, documents: dict[str, list[Document]]) -> dict[str, dict[str, list[str]]]:
        """Per namespace: the trigger classes ("O" first) and the argument roles (no "none": a sigmoid each)."""
        return {
            namespace(d, config.name): {
                "triggers": [NULL] + sorted({e.trigger.label for doc in documents[d] for e in doc.events}),
                "roles": sorted({a.label for doc in documents[d] for e in doc.events for a in e.arguments}),
            }
            for d in config.datasets
        }

    def instances(self, documents: list[Document], dataset: str) -> list[Instance]:
        return event_instances(documents, namespace(dataset, self.name))

    def entity_types(self, ns: str) -> None:
        return None  # triggers are not entities: no gold entity type is a miss of this head

    def span_types(self, ns: str) -> list[str]:
        return self.labels[ns]["triggers"]

    relabel = Task.relabel  # an entity type map (predict's keep_labels) leaves events as they are

    def collate(self, instances: list[Instance]) -> dict[str, torch.Tensor]:
        """The trigger spans as the span classifier's tensors; the argument spans (B, A, 2), their mask and whether
        each is a gold argument; the gold triggers as indices into the trigger spans (B, G) with a mask; and the
        gold roles as (trigger slot in G, argument span, role) triples (B, K, 3) with a mask."""
        trigger_spans = self._spans(instances)
        trigger_positions = [{bounds: k for k, bounds in enumerate(enumerated)} for enumerated in trigger_spans]
        tensors = self._span_tensors(instances, trigger_spans, trigger_positions)
        argument_spans = [enumerate_spans(i.target.lengths, self.options.max_argument_width) for i in instances]
        argument_tensor, argument_mask = span_tensor(argument_spans)
        is_argument = torch.zeros(argument_mask.shape)
        roles = self.role_index[instances[0].namespace]
        triggers, triples = [], []
        for b, (instance, trigger_position, arguments) in enumerate(zip(instances, trigger_positions, argument_spans)):
            argument_position = {bounds: k for k, bounds in enumerate(arguments)}
            slots: dict[int, int] = {}  # trigger span index -> slot
            found = set()
            for event in instance.target.events:
                if event.trigger.bounds not in trigger_position:
                    continue
                slot = slots.setdefault(trigger_position[event.trigger.bounds], len(slots))
                for argument in event.arguments:
                    if argument.bounds in argument_position and argument.label in roles:
                        is_argument[b, argument_position[argument.bounds]] = 1
                        found.add((slot, argument_position[argument.bounds], roles[argument.label]))
            triggers.append(list(slots))
            triples.append(sorted(found))
        trigger_index, trigger_mask = _padded(triggers, ())
        role_triples, role_mask = _padded(triples, (3,))
        return {**tensors, "argument_spans": argument_tensor, "argument_mask": argument_mask, "is_argument": is_argument,
                "triggers": trigger_index, "trigger_mask": trigger_mask, "roles": role_triples, "role_mask": role_mask}

    def _argument_scores(self, states: torch.Tensor, batch: TaskBatch) -> torch.Tensor:
        """How much each enumerated argument span (B, A) looks like an argument of some event."""
        scorer = self.argument_scorers[batch.namespace]
        return self.argument_extractor.score(states, batch["argument_spans"], scorer).squeeze(-1)

    def _candidates(self, scores: torch.Tensor, batch: TaskBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """The pruned argument spans: indices (B, K) into the argument spans, and their mask."""
        keep = [math.ceil(self.options.argument_ratio * sum(i.target.lengths)) for i in batch.instances]
        available = [span_count(i.target.lengths, self.options.max_argument_width) for i in batch.instances]
        return prune(scores.detach().float(), batch["argument_mask"], keep, available)

    def _role_logits(self, states: torch.Tensor, triggers: torch.Tensor, trigger_logits: torch.Tensor,
                     arguments: torch.Tensor, ns: str) -> torch.Tensor:
        """One sentence: token states (T, D), trigger bounds (G, 2) with their type logits (G, types), argument
        bounds (C, 2) -> role logits (G, C, roles). Only these spans are represented."""
        g, c = len(triggers), len(arguments)
        trigger = self.extractor(states.unsqueeze(0), triggers.unsqueeze(0))[0].unsqueeze(1).expand(g, c, -1)
        argument = self.argument_extractor(states.unsqueeze(0), arguments.unsqueeze(0))[0].unsqueeze(0).expand(g, c, -1)
        between = pool_between(states, triggers.repeat_interleave(c, 0), arguments.repeat(g, 1)).view(g, c, -1)
        types = trigger_logits.float().softmax(-1).to(trigger.dtype).unsqueeze(1).expand(g, c, -1)
        features = [trigger, argument, trigger * argument, between.to(trigger.dtype), types]
        return self.role_classifiers[ns](torch.cat(features, dim=-1))

    def loss(self, states: torch.Tensor, mask: torch.Tensor, batch: TaskBatch) -> torch.Tensor:
        """Trigger cross-entropy over every trigger span, the argument scorer's binary cross-entropy over every
        argument span, and the roles' binary cross-entropy over each gold trigger paired with the gold and the
        pruned argument spans."""
        trigger_logits = self._logits(states, batch)
        scores = self._argument_scores(states, batch)
        argument_mask = batch["argument_mask"]
        span_losses = nn.functional.binary_cross_entropy_with_logits(scores.float(), batch["is_argument"], reduction="none")
        argument_loss = (span_losses * argument_mask).sum() / len(batch)
        candidates, kept = self._candidates(scores, batch)
        role_losses = []
        for b in range(len(batch)):
            triggers = batch["triggers"][b][batch["trigger_mask"][b]]
            if not len(triggers):
                continue
            triples = batch["roles"][b][batch["role_mask"][b]]
            columns = torch.cat([triples[:, 1], candidates[b][kept[b]]]).unique()  # sorted argument span indices
            targets = torch.zeros(len(triggers), len(columns), len(self.role_index[batch.namespace]), device=states.device)
            targets[triples[:, 0], torch.searchsorted(columns, triples[:, 1].contiguous()), triples[:, 2]] = 1
            logits = self._role_logits(states[b], batch["spans"][b][triggers], trigger_logits[b][triggers],
                                       batch["argument_spans"][b][columns], batch.namespace)
            role_losses.append(nn.functional.binary_cross_entropy_with_logits(logits.float(), targets, reduction="sum"))
        role_loss = torch.stack(role_losses).sum() / len(batch) if role_losses else scores.sum() * 0
        return self._entity_loss(trigger_logits, batch) + self.options.argument_weight * (argument_loss + role_loss)

    def decode(self, states: torch.Tensor, mask: torch.Tensor, batch: TaskBatch) -> list[list[Event]]:
        trigger_logits = self._logits(states, batch)
        candidates, kept = self._candidates(self._argument_scores(states, batch), batch)
        roles = self.labels[batch.namespace]["roles"]
        results = []
        for b, found in enumerate(self._decode_entities(trigger_logits, batch)):
            columns = candidates[b][kept[b]]
            if not found or not roles or not len(columns):
                results.append([Event(trigger) for trigger, _ in found])
                continue
            triggers = torch.tensor([index for _, index in found], device=states.device)
            arguments = batch["argument_spans"][b][columns]
            logits = self._role_logits(states[b], batch["spans"][b][triggers], trigger_logits[b][triggers], arguments,
                                       batch.namespace)
            chosen = (logits.float() > 0).nonzero().tolist()  # sigmoid > 0.5
            bounds = arguments.tolist()
            results.append([
                Event(trigger, tuple(sorted(Span(*bounds[c], roles[r]) for g, c, r in chosen if g == slot)))
                for slot, (trigger, _) in enumerate(found)
            ])
        return results

    def export(self, prediction: list[Event], offset: int) -> dict[str, list]:
        return {"events": [{"trigger": span_json(e.trigger, offset),
                            "arguments": [span_json(a, offset) for a in e.arguments]} for e in prediction]}

    def new_scorer(self) -> EventScorer:
        return EventScorer()


def _padded(rows: list[list], shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Lists of indices (or of index tuples of ``shape``) padded to (B, N, *shape) with a (B, N) mask."""
    most = max(1, max(map(len, rows)))
    tensor = torch.zeros(len(rows), most, *shape, dtype=torch.long)
    mask = torch.zeros(len(rows), most, dtype=torch.bool)
    for b, row in enumerate(rows):
        if row:
            tensor[b, : len(row)] = torch.tensor(row)
            mask[b, : len(row)] = True
    return tensor, mask
