"""End-to-end coreference by mention ranking (Lee et al. 2017) with coarse-to-fine antecedent pruning
(Lee et al. 2018), on whole documents.

Spans up to ``max_width`` are scored as mentions; the best ``mention_ratio`` per word survive; each keeps its
``max_antecedents`` best earlier mentions by a cheap bilinear score, which a feed-forward scorer then refines.
The loss is the marginal log-likelihood of all gold antecedents (or the dummy antecedent for a new entity), plus
a binary mention-detection loss on every enumerated span: without it, pruning can keep no gold mention early in
training, and the antecedent loss is then minimised by linking nothing. A document's loss is divided by its number
of sentences, so that it weighs like the sentence-level losses of the tasks it shares levels with.
"""
from __future__ import annotations

import math

import torch
from pydantic import Field
from torch import nn

from hmtl.config import TaskConfig, namespace
from hmtl.data.document import Document, Span
from hmtl.metrics.coref import CorefMetrics
from hmtl.modules.spans import PairScorer, SpanExtractor, enumerate_spans, feedforward, prune, span_count, span_tensor
from hmtl.registry import TASKS
from hmtl.tasks.base import Instance, Task, TaskBatch, span_json
from hmtl.tasks.span_classifier import overlong, span_instances

DISTANCE_BUCKETS = [1, 2, 3, 4, 5, 8, 16, 32, 64]


def distance_bucket(distance: torch.Tensor) -> torch.Tensor:
    return torch.bucketize(distance, torch.tensor(DISTANCE_BUCKETS, device=distance.device))


class CorefScorer:
    def __init__(self) -> None:
        self.metric = CorefMetrics()

    def update(self, predictions: list[list[list[tuple[int, int]]]], batch: list[Instance]) -> None:
        for clusters, instance in zip(predictions, batch):
            self.metric.update(clusters, [[s.bounds for s in cluster] for cluster in instance.target.clusters])

    def compute(self) -> dict[str, float]:
        return self.metric.compute()


@TASKS.register("coreference")
class Coreference(Task):
    metric_names = ("avg_f1", "muc_f1", "b3_f1", "ceafe_f1")

    class Options(Task.Options):
        max_width: int = Field(default=10, description="the longest mention, in tokens")
        mention_ratio: float = Field(default=0.4, description="mentions kept per word of the document, by mention score")
        max_antecedents: int = Field(default=50, description=(
            "earlier mentions each mention compares with (the best by the cheap bilinear score)"))
        hidden_size: int = Field(default=150, description="the mention and pair feed-forwards' hidden size")
        dropout: float = Field(default=0.3, description="dropout in the feed-forwards")
        mention_loss_weight: float = Field(default=1.0, description=(
            "weight of the mention-detection loss beside the antecedent loss"))
        batch_size: int | None = Field(default=1, ge=1, description="documents per batch")

    def __init__(self, config: TaskConfig, input_dim: int, labels: dict[str, list[str]]):
        super().__init__(config, input_dim, labels)
        options = self.options
        self.extractor = SpanExtractor(input_dim, options.max_width)
        dim = self.extractor.output_dim
        self.mention_scorer = feedforward(dim, options.hidden_size, 1, options.dropout)
        self.coarse = nn.Linear(dim, dim, bias=False)
        self.pair_scorer = PairScorer(dim, len(DISTANCE_BUCKETS) + 1, 20, options.hidden_size, options.dropout)

    @classmethod
    def instance_unit(cls, options: "Coreference.Options") -> str:
        return "document"

    @classmethod
    def label_sets(cls, config: TaskConfig, documents: dict[str, list[Document]]) -> dict[str, list[str]]:
        return {namespace(d, config.name): [] for d in config.datasets}

    def instances(self, documents: list[Document], dataset: str) -> list[Instance]:
        return span_instances(documents, namespace(dataset, self.name), "document")

    def collate(self, instances: list[Instance]) -> dict[str, torch.Tensor]:
        """Every enumerated span (B, S, 2) with its mask, and each span's gold cluster index (-1: no mention)."""
        spans = [enumerate_spans(i.target.lengths, self.options.max_width) for i in instances]
        tensor, mask = span_tensor(spans)
        clusters = torch.full(mask.shape, -1, dtype=torch.long)
        for b, (instance, enumerated) in enumerate(zip(instances, spans)):
            cluster_of = {span.bounds: c for c, cluster in enumerate(instance.target.clusters) for span in cluster}
            clusters[b, : len(enumerated)] = torch.tensor([cluster_of.get(span, -1) for span in enumerated], dtype=torch.long)
        return {"spans": tensor, "span_mask": mask, "clusters": clusters}

    def _span_counts(self, batch: TaskBatch) -> list[int]:
        """Each document's number of enumerated spans, from its sentence lengths (no read from the device)."""
        return [span_count(i.target.lengths, self.options.max_width) for i in batch.instances]

    def _score(self, states: torch.Tensor, batch: TaskBatch, b: int, count: int) -> tuple:
        """For document ``b`` (its ``count`` spans): the indices of the pruned mentions among its spans, their top
        antecedents, which of those are real, the antecedent scores (dummy first) and every span's mention score."""
        instance, document, spans = batch.instances[b], states[b : b + 1], batch["spans"][b : b + 1, :count]
        mention_scores = self.extractor.score(document, spans, self.mention_scorer)[0].squeeze(-1)
        keep = max(1, math.ceil(self.options.mention_ratio * sum(instance.target.lengths)))
        kept, _ = prune(mention_scores.unsqueeze(0).detach(), batch["span_mask"][b : b + 1, :count], [keep], [count])
        kept = kept[0]
        g, s_m = self.extractor(document, spans[:, kept])[0], mention_scores[kept]  # only the kept are represented
        k = g.size(0)
        order = torch.arange(k, device=g.device)
        earlier = order.unsqueeze(1) > order.unsqueeze(0)  # (i, j): j is before i
        coarse = s_m.unsqueeze(1) + s_m.unsqueeze(0) + self.coarse(g) @ g.t()
        coarse = coarse.masked_fill(~earlier, float("-inf"))
        top = min(self.options.max_antecedents, k)
        coarse_top, antecedents = coarse.topk(top, dim=1)  # (k, top)
        valid = torch.isfinite(coarse_top)
        distance = distance_bucket((order.unsqueeze(1) - antecedents).clamp(min=0))
        fine = self.pair_scorer(g, antecedents, distance)
        scores = (coarse_top.masked_fill(~valid, 0) + fine).masked_fill(~valid, -1e4)
        scores = torch.cat([scores.new_zeros(k, 1), scores], dim=1)  # dummy antecedent scores 0
        return kept, antecedents, valid, scores, mention_scores

    def loss(self, states: torch.Tensor, mask: torch.Tensor, batch: TaskBatch) -> torch.Tensor:
        total = states.new_zeros(())
        for b, count in enumerate(self._span_counts(batch)):
            kept, antecedents, valid, scores, mention_scores = self._score(states, batch, b, count)
            clusters = batch["clusters"][b, :count]
            mention_loss = self.options.mention_loss_weight * nn.functional.binary_cross_entropy_with_logits(
                mention_scores.float(), (clusters >= 0).float(), reduction="sum")
            ids = clusters[kept]
            ids = torch.where(ids >= 0, ids, -1 - torch.arange(len(ids), device=ids.device))  # a non-mention: its own
            gold = (ids[antecedents] == ids.unsqueeze(1)) & valid & (ids.unsqueeze(1) >= 0)
            gold = torch.cat([~gold.any(1, keepdim=True), gold], dim=1)
            scores = scores.float()
            document_loss = mention_loss + (torch.logsumexp(scores, 1) - torch.logsumexp(scores.masked_fill(~gold, -1e4), 1)).sum()
            total = total + document_loss / len(batch.instances[b].target.lengths)
        return total / len(batch)

    def decode(self, states: torch.Tensor, mask: torch.Tensor, batch: TaskBatch) -> list[list[list[tuple[int, int]]]]:
        predictions = []
        for b, count in enumerate(self._span_counts(batch)):
            kept, antecedents, _, scores, _ = self._score(states, batch, b, count)
            mentions = [tuple(span) for span in batch["spans"][b, kept].tolist()]
            best, antecedents = scores.argmax(1).tolist(), antecedents.tolist()
            cluster_of: dict[int, int] = {}
            clusters: list[list[tuple[int, int]]] = []
            for i, choice in enumerate(best):
                if choice == 0:
                    continue
                j = antecedents[i][choice - 1]
                if j not in cluster_of:
                    cluster_of[j] = len(clusters)
                    clusters.append([mentions[j]])
                cluster_of[i] = cluster_of[j]
                clusters[cluster_of[j]].append(mentions[i])
            predictions.append(clusters)
        return predictions

    def unreachable(self, instances: list[Instance]) -> str | None:
        mentions = [span for instance in instances for cluster in instance.target.clusters for span in cluster]
        return overlong(mentions, self.options.max_width)

    def export(self, prediction: list[list[tuple[int, int]]], offset: int) -> dict[str, list]:
        return {"clusters": [[span_json(Span(start, end), offset) for start, end in cluster] for cluster in prediction]}

    def new_scorer(self) -> CorefScorer:
        return CorefScorer()

