"""Relation extraction between predicted mentions (SpERT-style, on the hierarchy's states): the task classifies
spans into entity types, then every ordered pair of candidate mentions into a relation label or none.

A pair is [head ; tail ; head * tail ; max-pooled tokens between the two (the localized context that SpERT found
worth several F1) ; both arguments' entity-type distributions (relation labels constrain argument types)].

Training pairs: gold entities plus the highest-scoring other spans, all positive pairs, and at most
``negative_samples`` sampled negative pairs per instance. Decoding pairs: the spans predicted as entities.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from pydantic import Field
from torch import nn

from hmtl.config import TaskConfig, namespace
from hmtl.data.document import Document, Relation, Span, relabeled
from hmtl.metrics.relation import RelationF1
from hmtl.metrics.span_f1 import SpanF1
from hmtl.modules.spans import feedforward, pool_between
from hmtl.registry import TASKS
from hmtl.tasks.base import Instance, TaskBatch, span_json
from hmtl.tasks.span_classifier import NULL, SpanClassifier


class RelationScorer:
    def __init__(self) -> None:
        self.relations = RelationF1()
        self.entities = SpanF1()

    def update(self, predictions: list[tuple[list[Span], list[Relation]]], batch: list[Instance]) -> None:
        for (entities, relations), instance in zip(predictions, batch):
            key = instance.source
            self.entities.update([(key, s.start, s.end, s.label) for s in entities], [(key, s.start, s.end, s.label) for s in instance.target.entities])
            self.relations.update(relations, instance.target.relations)

    def compute(self) -> dict[str, float]:
        metrics = self.relations.compute()
        metrics.update({f"entity_{k}": v for k, v in self.entities.compute().items() if not k.startswith("f1_")})
        return metrics


@TASKS.register("relation")
class RelationExtractor(SpanClassifier):
    metric_names = ("strict_micro_f1", "boundaries_micro_f1", "strict_macro_f1", "entity_f1")

    class Options(SpanClassifier.Options):
        candidate_ratio: float = Field(default=0.4, description="candidate mentions per token when training")
        negative_samples: int = Field(default=100, description="negative pairs drawn per instance when training")
        relation_weight: float = Field(default=1.0, description="weight of the relation loss beside the entity loss")

    def __init__(self, config: TaskConfig, input_dim: int, labels: dict[str, dict[str, list[str]]]):
        super().__init__(config, input_dim, {ns: both["entities"] for ns, both in labels.items()})
        self.relation_labels = {ns: both["relations"] for ns, both in labels.items()}
        self.labels = labels
        span_dim, state_dim = self.extractor.output_dim, input_dim
        self.pair_classifiers = nn.ModuleDict({
            ns: feedforward(3 * span_dim + state_dim + 2 * len(labels[ns]["entities"]), self.options.hidden_size, len(rels), self.options.dropout)
            for ns, rels in self.relation_labels.items()
        })
        self.relation_index = {ns: {r: i for i, r in enumerate(rels)} for ns, rels in self.relation_labels.items()}

    @classmethod
    def label_sets(cls, config: TaskConfig, documents: dict[str, list[Document]]) -> dict[str, dict[str, list[str]]]:
        entity_types = SpanClassifier.label_sets(config, documents)
        return {
            ns: {"entities": types, "relations": [NULL] + sorted({r.label for doc in documents[d] for r in doc.relations})}
            for d in config.datasets
            for ns, types in [(namespace(d, config.name), entity_types[namespace(d, config.name)])]
        }

    def entity_types(self, ns: str) -> list[str]:
        return self.labels[ns]["entities"]

    def collate(self, instances: list[Instance]) -> dict[str, torch.Tensor]:
        """The span classifier's tensors, plus each instance's gold relations as span index pairs (B, R, 2), their
        label indices (B, R) and a mask (relations whose arguments are no enumerated span are left out), its gold
        entities' span indices (B, G) with a mask, and how many candidate spans it keeps (B,)."""
        spans = self._spans(instances)
        positions = [{bounds: k for k, bounds in enumerate(enumerated)} for enumerated in spans]
        tensors = self._span_tensors(instances, spans, positions)
        index = self.relation_index[instances[0].namespace]
        found = []
        for instance, position in zip(instances, positions):
            found.append({(position[r.head.bounds], position[r.tail.bounds]): index.get(r.label, 0)
                          for r in instance.target.relations if r.head.bounds in position and r.tail.bounds in position})
        most = max(1, max(map(len, found)))
        pairs = torch.zeros(len(instances), most, 2, dtype=torch.long)
        labels = torch.zeros(len(instances), most, dtype=torch.long)
        pair_mask = torch.zeros(len(instances), most, dtype=torch.bool)
        for b, gold in enumerate(found):
            if gold:
                pairs[b, : len(gold)] = torch.tensor(list(gold))
                labels[b, : len(gold)] = torch.tensor(list(gold.values()))
                pair_mask[b, : len(gold)] = True
        golds = [row.nonzero().flatten() for row in tensors["gold"]]
        gold_spans = torch.zeros(len(instances), max(1, max(len(g) for g in golds)), dtype=torch.long)
        gold_span_mask = torch.zeros(gold_spans.shape, dtype=torch.bool)
        for b, g in enumerate(golds):
            gold_spans[b, : len(g)], gold_span_mask[b, : len(g)] = g, True
        keep = torch.tensor([math.ceil(self.options.candidate_ratio * sum(i.target.lengths)) for i in instances])
        return {**tensors, "pairs": pairs, "pair_labels": labels, "pair_mask": pair_mask, "gold_spans": gold_spans,
                "gold_span_mask": gold_span_mask, "candidate_keep": keep}

    def _pair_logits(self, states: torch.Tensor, bounds: torch.Tensor, type_logits: torch.Tensor, pairs: torch.Tensor,
                     ns: str) -> torch.Tensor:
        """Token states (B, T, D), span bounds (B, S, 2) and type logits (B, S, types), pairs (B, P, 2) of span
        indices -> relation logits (B, P, relations). Only the spans in a pair are represented."""
        def of(index: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
            return table.gather(1, index.unsqueeze(-1).expand(-1, -1, table.size(-1)))

        head_bounds, tail_bounds = of(pairs[..., 0], bounds), of(pairs[..., 1], bounds)
        head, tail = self.extractor(states, head_bounds), self.extractor(states, tail_bounds)
        types = type_logits.float().softmax(-1).to(head.dtype)
        context = pool_between(states, head_bounds, tail_bounds)
        features = [head, tail, head * tail, context.to(head.dtype), of(pairs[..., 0], types), of(pairs[..., 1], types)]
        return self.pair_classifiers[ns](torch.cat(features, dim=-1))

    def loss(self, states: torch.Tensor, mask: torch.Tensor, batch: TaskBatch) -> torch.Tensor:
        """Entity typing over every span, plus cross-entropy over the gold pairs and sampled negative pairs of the
        candidates (gold entities and the spans the model finds most entity-like, which depend on the model)."""
        logits = self._logits(states, batch)
        entity_loss = self._entity_loss(logits, batch)
        pairs, labels, kept = self._training_pairs(logits, batch)
        pair_logits = self._pair_logits(states, batch["spans"], logits, pairs, batch.namespace)
        losses = nn.functional.cross_entropy(pair_logits.float().flatten(0, 1), labels.flatten(), reduction="none")
        relation_loss = (losses * kept.flatten()).sum() / len(batch)
        return entity_loss + self.options.relation_weight * relation_loss

    def _training_pairs(self, logits: torch.Tensor, batch: TaskBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Each instance's gold pairs, then at most ``negative_samples`` other ordered pairs of its candidates (its
        gold entities and its ``candidate_ratio`` x tokens most entity-like spans), drawn uniformly: span-index
        pairs (B, P, 2), labels (B, P) and a mask. Built with tensor operations on the model's device: nothing is
        read back to the host, so a GPU never waits for Python here."""
        span_mask, gold_spans, gold_ok = batch["span_mask"], batch["gold_spans"], batch["gold_span_mask"]
        size, spans = span_mask.shape
        device = span_mask.device
        most = min(spans, max(math.ceil(self.options.candidate_ratio * sum(i.target.lengths)) for i in batch.instances))
        not_null = (1 - logits.detach().float().softmax(-1)[..., 0]).masked_fill(~span_mask, -1.0)
        top = not_null.topk(most, dim=1).indices
        top_ok = (torch.arange(most, device=device) < batch["candidate_keep"].unsqueeze(1)) & span_mask.gather(1, top)
        top_ok &= ~((top.unsqueeze(2) == gold_spans.unsqueeze(1)) & gold_ok.unsqueeze(1)).any(-1)  # gold already in
        candidates, ok = torch.cat([gold_spans, top], dim=1), torch.cat([gold_ok, top_ok], dim=1)
        width = candidates.size(1)
        heads = candidates.unsqueeze(2).expand(-1, -1, width).flatten(1)
        tails = candidates.unsqueeze(1).expand(-1, width, -1).flatten(1)
        allowed = (ok.unsqueeze(2) & ok.unsqueeze(1) & ~torch.eye(width, dtype=torch.bool, device=device)).flatten(1)
        gold, gold_mask = batch["pairs"], batch["pair_mask"]
        is_gold = ((heads.unsqueeze(2) == gold[..., 0].unsqueeze(1)) & (tails.unsqueeze(2) == gold[..., 1].unsqueeze(1))
                   & gold_mask.unsqueeze(1)).any(-1)
        draws = torch.rand(size, width * width, device=device).masked_fill(~(allowed & ~is_gold), -1.0)
        drawn, chosen = draws.topk(min(self.options.negative_samples, width * width), dim=1)
        negatives = torch.stack([heads.gather(1, chosen), tails.gather(1, chosen)], dim=-1)
        return (torch.cat([gold, negatives], dim=1),
                torch.cat([batch["pair_labels"], torch.zeros_like(chosen)], dim=1),
                torch.cat([gold_mask, drawn >= 0], dim=1))

    def decode(self, states: torch.Tensor, mask: torch.Tensor, batch: TaskBatch) -> list[tuple[list[Span], list[Relation]]]:
        logits = self._logits(states, batch)
        relation_labels = self.relation_labels[batch.namespace]
        results = []
        for b, found in enumerate(self._decode_entities(logits, batch)):
            entities, relations = [span for span, _ in found], []
            if len(found) > 1:
                pairs = [(h, t) for h in range(len(found)) for t in range(len(found)) if h != t]
                rows = torch.tensor([[(found[h][1], found[t][1]) for h, t in pairs]], device=states.device)
                scored = self._pair_logits(states[b : b + 1], batch["spans"][b : b + 1], logits[b : b + 1], rows, batch.namespace)
                predicted = scored[0].argmax(-1).tolist()
                relations = [Relation(entities[h], entities[t], relation_labels[p]) for (h, t), p in zip(pairs, predicted) if p]
            results.append((entities, relations))
        return results

    def relabel(self, prediction: tuple[list[Span], list[Relation]],
                mapping: Callable[[str], str | None]) -> tuple[list[Span], list[Relation]]:
        return relabeled(*prediction, mapping)

    def export(self, prediction: tuple[list[Span], list[Relation]], offset: int) -> dict[str, list]:
        entities, relations = prediction
        return {
            "entities": [span_json(s, offset) for s in entities],
            "relations": [{"head": span_json(r.head, offset), "tail": span_json(r.tail, offset), "label": r.label}
                          for r in relations],
        }

    def new_scorer(self) -> RelationScorer:
        return RelationScorer()
