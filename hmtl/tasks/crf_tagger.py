"""Sequence tagging with a linear-chain CRF: NER from entity spans (BIOES), or any token layer such as UPOS."""
from __future__ import annotations

import logging
from typing import Callable, Literal

import torch
from pydantic import Field
from torch import nn

from hmtl.config import Section, TaskConfig, namespace
from hmtl.data.document import Document, Span, relabeled
from hmtl.data.tagging import spans_to_tags, tags_to_spans
from hmtl.errors import ConfigError
from hmtl.metrics.span_f1 import SpanF1
from hmtl.modules.bilstm import BiLstm
from hmtl.modules.crf import CRF, transition_constraints
from hmtl.registry import TASKS
from hmtl.tasks.base import Instance, Task, TaskBatch, sentence_context, span_json

logger = logging.getLogger(__name__)


class TokenAccuracy:
    def __init__(self) -> None:
        self.correct = self.total = 0

    def update(self, predicted: list[list[str]], gold: list[list[str]]) -> None:
        for p_seq, g_seq in zip(predicted, gold):
            self.correct += sum(p == g for p, g in zip(p_seq, g_seq))
            self.total += len(g_seq)

    def compute(self) -> dict[str, float]:
        return {"accuracy": 100.0 * self.correct / self.total if self.total else 0.0}


class TaggerScorer:
    """Entity F1 (exact span and type) for span layers, token accuracy for token layers."""

    def __init__(self, spans: bool):
        self.spans = spans
        self.metric = SpanF1() if spans else TokenAccuracy()

    def update(self, predictions: list[list[str]], batch: list[Instance]) -> None:
        gold = [instance.target for instance in batch]
        if not self.spans:
            self.metric.update(predictions, gold)
            return
        for i, (pred_tags, gold_tags) in enumerate(zip(predictions, gold)):
            key = batch[i].source
            self.metric.update(
                [(key, s.start, s.end, s.label) for s in tags_to_spans(pred_tags)],
                [(key, s.start, s.end, s.label) for s in tags_to_spans(gold_tags)],
            )

    def compute(self) -> dict[str, float]:
        return self.metric.compute()


class PrivateEncoder(Section):
    hidden_size: int = Field(ge=1, description="the private BiLSTM's size in each direction")
    dropout: float = Field(default=0.5, ge=0, lt=1, description="dropout on its output")
    datasets: list[str] | None = Field(default=None, min_length=1, description=(
        "the datasets whose namespaces get one (default: every dataset of the task); the others read the shared "
        "level alone"))


@TASKS.register("crf_tagger")
class CrfTagger(Task):
    class Options(Task.Options):
        label_layer: str = Field(default="entities", description=(
            "what is tagged: \"entities\" (entity spans as tags of scheme) or a token layer a reader fills (pos, chunk, upos, ...)"))
        scheme: Literal["bioes", "iob2"] = Field(default="bioes", description=(
            "the tags entity spans are trained and decoded as (the CRF allows only valid transitions)"))
        dropout: float = Field(default=0.0, description="dropout on the states before the tag projection")
        private_encoder: PrivateEncoder | None = Field(default=None, description=(
            "a BiLSTM of each namespace's own above the shared level, its output beside the shared states "
            "(shared-private multi-task learning: each corpus keeps capacity the others cannot overwrite)"))

    def __init__(self, config: TaskConfig, input_dim: int, labels: dict[str, list[str]]):
        super().__init__(config, input_dim, labels)
        self.dropout = nn.Dropout(self.options.dropout)
        private = self.options.private_encoder
        self.private = nn.ModuleDict({
            namespace(dataset, self.name): BiLstm(input_dim, private.hidden_size, dropout=private.dropout)
            for dataset in (private.datasets or self.datasets)
        } if private else {})
        self.projections = nn.ModuleDict({
            ns: nn.Linear(input_dim + (self.private[ns].output_dim if ns in self.private else 0), len(tags))
            for ns, tags in labels.items()
        })
        self.crfs = nn.ModuleDict(
            {ns: CRF(len(tags), transition_constraints(tags, self.options.scheme) if self.uses_spans else None) for ns, tags in labels.items()}
        )
        self.tag_index = {ns: {tag: i for i, tag in enumerate(tags)} for ns, tags in labels.items()}
        self.dropped_overlaps = 0

    @classmethod
    def parse_options(cls, config: TaskConfig) -> "CrfTagger.Options":
        options = super().parse_options(config)
        private = options.private_encoder
        unknown = [d for d in (private.datasets or []) if d not in config.datasets] if private else []
        if unknown:
            raise ConfigError(f"tasks.{config.name}.options.private_encoder.datasets: {', '.join(unknown)} "
                              f"not among the task's datasets ({', '.join(config.datasets)})")
        return options

    @classmethod
    def main_metrics(cls, options: "CrfTagger.Options") -> tuple[str, ...]:
        return ("f1",) if options.label_layer == "entities" else ("accuracy",)

    @property
    def uses_spans(self) -> bool:
        return self.options.label_layer == "entities"

    @classmethod
    def label_sets(cls, config: TaskConfig, documents: dict[str, list[Document]]) -> dict[str, list[str]]:
        options = cls.parse_options(config)
        labels = {}
        for dataset in config.datasets:
            if options.label_layer == "entities":
                types = sorted({span.label for doc in documents[dataset] for span in doc.entities})
                prefixes = "BIES" if options.scheme == "bioes" else "BI"
                labels[namespace(dataset, config.name)] = ["O"] + [f"{p}-{t}" for t in types for p in prefixes]
            else:
                tags = {tag for doc in documents[dataset] for sent in doc.token_tags.get(options.label_layer, []) for tag in sent}
                labels[namespace(dataset, config.name)] = sorted(tags)
        return labels

    def entity_types(self, ns: str) -> list[str] | None:
        if not self.uses_spans:
            return None
        return sorted({tag.split("-", 1)[1] for tag in self.labels[ns] if tag != "O"})

    def sentence_tags(self, document: Document) -> list[list[str]]:
        if not self.uses_spans:  # raw text to predict on has no gold layer
            return document.token_tags.get(self.options.label_layer) or [["_"] * len(s) for s in document.sentences]
        tags = []
        for _, tokens, spans in document.entities_by_sentence():
            kept = outermost(spans)
            self.dropped_overlaps += len(set(spans)) - len(kept)
            tags.append(spans_to_tags(kept, len(tokens), self.options.scheme))
        return tags

    def instances(self, documents: list[Document], dataset: str) -> list[Instance]:
        """Sentences with their tags; a flat tagger sees one layer of entities, so of nested or overlapping
        entities it keeps the outermost and logs how many it left out. An entity tagger leaves out the sentences
        marked ``unannotated`` (their entities are unknown: tagging them all O would teach it wrong)."""
        ns = namespace(dataset, self.name)
        self.dropped_overlaps = 0
        instances = [
            Instance(tokens=tokens, namespace=ns, target=tags, source=(doc.doc_id, i), context=sentence_context(doc, i))
            for doc in documents
            for i, (tokens, tags) in enumerate(zip(doc.sentences, self.sentence_tags(doc)))
            if tokens and not (self.uses_spans and i in doc.unannotated)
        ]
        if self.dropped_overlaps:
            logger.info("%s: %d nested or overlapping entities left out (a flat tagger keeps the outermost)",
                        ns, self.dropped_overlaps)
        return instances

    def emissions(self, states: torch.Tensor, mask: torch.Tensor, ns: str) -> torch.Tensor:
        if ns in self.private:
            states = torch.cat([states, self.private[ns](states, mask)], dim=-1)
        return self.projections[ns](self.dropout(states))

    def collate(self, instances: list[Instance]) -> dict[str, torch.Tensor]:
        """Gold tag indices (B, T), zero-padded (tags the head does not know become its first tag)."""
        index = self.tag_index[instances[0].namespace]
        tags = torch.zeros(len(instances), max(len(i.tokens) for i in instances), dtype=torch.long)
        for b, instance in enumerate(instances):
            tags[b, : len(instance.target)] = torch.tensor([index.get(t, 0) for t in instance.target])
        return {"tags": tags}

    def loss(self, states: torch.Tensor, mask: torch.Tensor, batch: TaskBatch) -> torch.Tensor:
        ns = batch.namespace
        return self.crfs[ns](self.emissions(states, mask, ns), batch["tags"], mask) / len(batch)

    def decode(self, states: torch.Tensor, mask: torch.Tensor, batch: TaskBatch) -> list[list[str]]:
        ns = batch.namespace
        paths = self.crfs[ns].viterbi(self.emissions(states, mask, ns), mask)
        return [[self.labels[ns][i] for i in path] for path in paths]

    def relabel(self, prediction: list[str], mapping: Callable[[str], str | None]) -> list[str]:
        if not self.uses_spans:
            return prediction
        entities, _ = relabeled(tags_to_spans(prediction), [], mapping)
        return spans_to_tags(entities, len(prediction), self.options.scheme)

    def export(self, prediction: list[str], offset: int) -> dict[str, list]:
        if not self.uses_spans:
            return {"tags": [prediction]}
        return {"entities": [span_json(s, offset) for s in tags_to_spans(prediction)]}

    def new_scorer(self) -> TaggerScorer:
        return TaggerScorer(self.uses_spans)


def outermost(spans: list[Span]) -> list[Span]:
    """A flat tagger sees one layer: keep the outermost of nested spans (longest first, then leftmost)."""
    kept: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start, -(s.end - s.start))):
        if not kept or span.start >= kept[-1].end:
            kept.append(span)
    return kept
