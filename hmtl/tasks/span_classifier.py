"""Typed span classification: entity mention detection with nested mentions (GUM, LitBank), or span-based NER
with a maximum entity length (SpanMarker style, ``flat: true`` keeps the best non-overlapping spans)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal

import torch
from pydantic import Field
from torch import nn

from hmtl.config import TaskConfig, namespace, split_namespace
from hmtl.data.document import Document, Relation, Span, relabeled
from hmtl.errors import DataFormatError
from hmtl.metrics.span_f1 import SpanF1
from hmtl.modules.spans import SpanExtractor, enumerate_spans, feedforward, span_tensor
from hmtl.registry import TASKS
from hmtl.tasks.base import Instance, Task, TaskBatch, sentence_context, span_json

NULL = "O"


@dataclass
class SpanTarget:
    """Gold annotation of one sentence or document, offsets relative to the instance's first token."""

    lengths: list[int]
    entities: list[Span] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    clusters: list[list[Span]] = field(default_factory=list)


def _shift(span: Span, offset: int) -> Span:
    return Span(span.start - offset, span.end - offset, span.label)


def span_instances(documents: list[Document], ns: str, unit: Literal["sentence", "document"]) -> list[Instance]:
    """Sentence instances (entities and relations inside the sentence) or whole-document instances. Sentences
    marked ``unannotated`` are left out: their entities are unknown, not absent, so they are no negatives."""
    instances = []
    for doc in documents:
        if unit == "document":
            if doc.unannotated:
                raise DataFormatError(f"dataset {split_namespace(ns)[0]}", None, f"document {doc.doc_id!r} has "
                                      "sentences without entity annotation, which a whole-document task would "
                                      "read as having none; use a sentence-level task")
            target = SpanTarget([len(s) for s in doc.sentences], list(doc.entities), list(doc.relations), [list(c) for c in doc.clusters])
            instances.append(Instance(doc.tokens, ns, target, source=(doc.doc_id,), sentence_lengths=target.lengths))
            continue
        offsets = doc.sentence_offsets()
        for index, (offset, sentence) in enumerate(zip(offsets, doc.sentences)):
            end = offset + len(sentence)
            inside = lambda s: offset <= s.start and s.end <= end  # noqa: E731
            target = SpanTarget(
                [len(sentence)],
                [_shift(s, offset) for s in doc.entities if inside(s)],
                [Relation(_shift(r.head, offset), _shift(r.tail, offset), r.label) for r in doc.relations if inside(r.head) and inside(r.tail)],
            )
            if sentence and index not in doc.unannotated:
                instances.append(Instance(sentence, ns, target, source=(doc.doc_id, index), context=sentence_context(doc, index)))
    return instances


def overlong(spans: list[Span], max_width: int) -> str | None:
    """Gold spans longer than ``max_width`` are never enumerated, so never trained on nor predicted; they stay in
    the scorer's gold, as misses, and the log says how many."""
    wide = sum(span.end - span.start > max_width for span in spans)
    return f"{wide} of {len(spans)} gold mentions are longer than max_width {max_width}" if wide else None


class SpanScorer:
    def __init__(self) -> None:
        self.metric = SpanF1()

    def update(self, predictions: list[list[Span]], batch: list[Instance]) -> None:
        for spans, instance in zip(predictions, batch):
            key = instance.source
            self.metric.update([(key, s.start, s.end, s.label) for s in spans], [(key, s.start, s.end, s.label) for s in instance.target.entities])

    def compute(self) -> dict[str, float]:
        return self.metric.compute()


def flat_decode(candidates: list[tuple[float, Span]]) -> list[Span]:
    """Best-scoring first, drop any span overlapping one already kept."""
    kept: list[Span] = []
    for _, span in sorted(candidates, key=lambda c: -c[0]):
        if all(span.end <= k.start or span.start >= k.end for k in kept):
            kept.append(span)
    return sorted(kept)


@TASKS.register("span_classifier")
class SpanClassifier(Task):
    metric_names = ("f1",)

    class Options(Task.Options):
        max_width: int = Field(default=10, description=(
            "the longest span, in tokens; a longer gold span cannot be predicted (a warning counts them)"))
        hidden_size: int = Field(default=150, description="the span feed-forward's hidden size")
        dropout: float = Field(default=0.3, description="dropout in the feed-forward")
        flat: bool = Field(default=False, description="span-based flat NER: keep the best non-overlapping spans")
        unit: Literal["sentence", "document"] = Field(default="sentence", description=(
            "an instance is a sentence, or a whole document (spans still inside one sentence)"))

    def __init__(self, config: TaskConfig, input_dim: int, labels: dict[str, list[str]]):
        super().__init__(config, input_dim, labels)
        self.extractor = SpanExtractor(input_dim, self.options.max_width)
        self.classifiers = nn.ModuleDict(
            {ns: feedforward(self.extractor.output_dim, self.options.hidden_size, len(types), self.options.dropout) for ns, types in labels.items()}
        )
        self.type_index = {ns: {t: i for i, t in enumerate(types)} for ns, types in labels.items()}

    @classmethod
    def instance_unit(cls, options: "SpanClassifier.Options") -> str:
        return options.unit

    @classmethod
    def label_sets(cls, config: TaskConfig, documents: dict[str, list[Document]]) -> dict[str, list[str]]:
        return {
            namespace(d, config.name): [NULL] + sorted({s.label for doc in documents[d] for s in doc.entities})
            for d in config.datasets
        }

    def instances(self, documents: list[Document], dataset: str) -> list[Instance]:
        return span_instances(documents, namespace(dataset, self.name), self.options.unit)

    def entity_types(self, ns: str) -> list[str]:
        return self.labels[ns]

    def span_types(self, ns: str) -> list[str]:
        """The classes of the spans this head types, the first one "none": its entity types."""
        return self.entity_types(ns)

    def collate(self, instances: list[Instance]) -> dict[str, torch.Tensor]:
        """Every enumerated span (B, S, 2) with its mask, and each span's gold type index (0: not an entity)."""
        spans = self._spans(instances)
        return self._span_tensors(instances, spans, [{bounds: k for k, bounds in enumerate(s)} for s in spans])

    def _spans(self, instances: list[Instance]) -> list[list[tuple[int, int]]]:
        return [enumerate_spans(i.target.lengths, self.options.max_width) for i in instances]

    def _span_tensors(self, instances: list[Instance], spans: list[list[tuple[int, int]]],
                      positions: list[dict[tuple[int, int], int]]) -> dict[str, torch.Tensor]:
        """``spans`` of each instance and ``positions``, each span's index among them."""
        tensor, mask = span_tensor(spans)
        index = self.type_index[instances[0].namespace]
        gold = torch.zeros(mask.shape, dtype=torch.long)
        for b, (instance, position) in enumerate(zip(instances, positions)):
            for entity in instance.target.entities:
                if entity.bounds in position:
                    gold[b, position[entity.bounds]] = index.get(entity.label, 0)
        return {"spans": tensor, "span_mask": mask, "gold": gold}

    def _logits(self, states: torch.Tensor, batch: TaskBatch) -> torch.Tensor:
        """Type logits (B, S, types) of the batch's enumerated spans."""
        return self.extractor.score(states, batch["spans"], self.classifiers[batch.namespace])

    @staticmethod
    def _entity_loss(logits: torch.Tensor, batch: TaskBatch) -> torch.Tensor:
        losses = nn.functional.cross_entropy(logits.float().flatten(0, 1), batch["gold"].flatten(), reduction="none")
        return (losses * batch["span_mask"].flatten()).sum() / len(batch)

    def _decode_entities(self, logits: torch.Tensor, batch: TaskBatch) -> list[list[tuple[Span, int]]]:
        """Each instance's predicted entities, sorted, with the index of their span in the batch's spans."""
        types = self.span_types(batch.namespace)
        best, label = logits.float().softmax(-1).max(-1)
        found = (label > 0) & batch["span_mask"]
        best, label, found, spans = best.cpu(), label.cpu(), found.cpu(), batch["spans"].cpu()
        predictions = []
        for b in range(len(batch)):
            rows = found[b].nonzero().flatten().tolist()
            candidates = [(float(best[b, i]), Span(*spans[b, i].tolist(), types[int(label[b, i])]), i) for i in rows]
            if self.options.flat:
                kept = set(flat_decode([(score, span) for score, span, _ in candidates]))
                candidates = [c for c in candidates if c[1] in kept]
            predictions.append(sorted((span, i) for _, span, i in candidates))
        return predictions

    def loss(self, states: torch.Tensor, mask: torch.Tensor, batch: TaskBatch) -> torch.Tensor:
        return self._entity_loss(self._logits(states, batch), batch)

    def decode(self, states: torch.Tensor, mask: torch.Tensor, batch: TaskBatch) -> list[list[Span]]:
        return [[span for span, _ in found] for found in self._decode_entities(self._logits(states, batch), batch)]

    def unreachable(self, instances: list[Instance]) -> str | None:
        return overlong([span for instance in instances for span in instance.target.entities], self.options.max_width)

    def relabel(self, prediction: list[Span], mapping: Callable[[str], str | None]) -> list[Span]:
        return relabeled(prediction, [], mapping)[0]

    def export(self, prediction: list[Span], offset: int) -> dict[str, list]:
        """A flat head is NER and answers ``entities``, as the tagger does; a nested one ``mentions``."""
        return {"entities" if self.options.flat else "mentions": [span_json(s, offset) for s in prediction]}

    def new_scorer(self) -> SpanScorer:
        return SpanScorer()
