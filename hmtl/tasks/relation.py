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
        candidate_ratio: float = 0.4  # candidate mentions per token when training
        negative_samples: int = 100
        relation_weight: float = 1.0

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
        label indices (B, R) and a mask (relations whose arguments are no enumerated span are left out)."""
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
        return {**tensors, "pairs": pairs, "pair_labels": labels, "pair_mask": pair_mask}

    def _pair_logits(self, states: torch.Tensor, bounds: torch.Tensor, type_logits: torch.Tensor, pairs: torch.Tensor,
                     ns: str) -> torch.Tensor:
        """One instance: token states (T, D), span bounds (S, 2) and type logits, pairs (P, 2) of span indices. Only
        the spans in a pair are represented."""
        used, position = pairs.unique(return_inverse=True)
        representations = self.extractor(states.unsqueeze(0), bounds[used].unsqueeze(0))[0]
        head, tail = representations[position[:, 0]], representations[position[:, 1]]
        types = type_logits.float().softmax(-1).to(head.dtype)
        context = pool_between(states, bounds[pairs[:, 0]], bounds[pairs[:, 1]])
        features = [head, tail, head * tail, context.to(head.dtype), types[pairs[:, 0]], types[pairs[:, 1]]]
        return self.pair_classifiers[ns](torch.cat(features, dim=-1))

    def loss(self, states: torch.Tensor, mask: torch.Tensor, batch: TaskBatch) -> torch.Tensor:
        """Entity typing over every span, plus cross-entropy over the gold pairs and sampled negative pairs of the
        candidates (gold entities and the spans the model finds most entity-like, which depend on the model)."""
        logits = self._logits(states, batch)
        entity_loss = self._entity_loss(logits, batch)
        not_null = 1 - logits.float().softmax(-1)[..., 0]
        counts = batch["span_mask"].sum(1).tolist()
        gold_spans, gold_pairs, pair_mask = (batch["gold"] > 0).cpu(), batch["pairs"].cpu(), batch["pair_mask"].cpu()
        pair_losses = []
        for b, instance in enumerate(batch.instances):
            n = counts[b]
            keep = math.ceil(self.options.candidate_ratio * sum(instance.target.lengths))
            ranked = not_null[b, :n].topk(min(keep, n)).indices.tolist()
            candidates = list(dict.fromkeys(gold_spans[b].nonzero().flatten().tolist() + ranked))
            positives = [tuple(p) for p in gold_pairs[b][pair_mask[b]].tolist()]
            gold = set(positives)
            negatives = [(h, t) for h in candidates for t in candidates if h != t and (h, t) not in gold]
            if len(negatives) > self.options.negative_samples:
                chosen = torch.randperm(len(negatives))[: self.options.negative_samples].tolist()
                negatives = [negatives[i] for i in chosen]
            if not positives and not negatives:
                continue
            labels = torch.cat([batch["pair_labels"][b][batch["pair_mask"][b]],
                                torch.zeros(len(negatives), dtype=torch.long, device=states.device)])
            pairs = torch.tensor(positives + negatives, dtype=torch.long, device=states.device)
            pair_logits = self._pair_logits(states[b], batch["spans"][b], logits[b], pairs, batch.namespace)
            pair_losses.append(nn.functional.cross_entropy(pair_logits.float(), labels, reduction="sum"))
        relation_loss = torch.stack(pair_losses).sum() / len(batch) if pair_losses else logits.sum() * 0
        return entity_loss + self.options.relation_weight * relation_loss

    def decode(self, states: torch.Tensor, mask: torch.Tensor, batch: TaskBatch) -> list[tuple[list[Span], list[Relation]]]:
        logits = self._logits(states, batch)
        relation_labels = self.relation_labels[batch.namespace]
        results = []
        for b, found in enumerate(self._decode_entities(logits, batch)):
            entities, relations = [span for span, _ in found], []
            if len(found) > 1:
                pairs = [(h, t) for h in range(len(found)) for t in range(len(found)) if h != t]
                rows = torch.tensor([(found[h][1], found[t][1]) for h, t in pairs], device=states.device)
                predicted = self._pair_logits(states[b], batch["spans"][b], logits[b], rows, batch.namespace).argmax(-1).tolist()
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
