"""Sentence classification from any level: the level's token states pooled over the sentence (mean, max or
attention), then a feed-forward to one label (softmax) or, with ``multi_label``, to a set of labels (an independent
sigmoid per label, kept above ``threshold``). Decision thresholds can be chosen on the validation split after
training (``tune_thresholds``): a class the loss does not weigh as the metric does, or a head trained beside other
tasks, is often better decided away from 0.5. The gold is ``Document.sentence_labels``, which readers fill (``ade``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import Field, ValidationInfo, field_validator
from torch import nn

from hmtl.config import TaskConfig, namespace, split_namespace
from hmtl.data.document import Document
from hmtl.errors import ConfigError, DataFormatError
from hmtl.metrics.classification import ClassificationScores
from hmtl.modules.spans import feedforward
from hmtl.registry import TASKS
from hmtl.tasks.base import Instance, Task, TaskBatch, sentence_context


@dataclass(frozen=True)
class SentencePrediction:
    sentence: int  # the sentence's index in its document
    labels: tuple[str, ...]
    probabilities: dict[str, float]


class ClassifierScorer:
    def __init__(self, multi_label: bool):
        self.metric = ClassificationScores(multi_label)

    def update(self, predictions: list[SentencePrediction], batch: list[Instance]) -> None:
        for prediction, instance in zip(predictions, batch):
            if instance.target is None:
                raise DataFormatError(f"dataset {split_namespace(instance.namespace)[0]}", None, f"document "
                                      f"{instance.source[0]!r} has no sentence labels to score against")
            self.metric.update(prediction.labels, instance.target)

    def compute(self) -> dict[str, float]:
        return self.metric.compute()


@TASKS.register("classifier")
class SentenceClassifier(Task):
    class Options(Task.Options):
        multi_label: bool = Field(default=False, description="a set of labels per sentence, a sigmoid each")
        threshold: float | None = Field(default=None, gt=0, lt=1, description=(
            "multi_label only: a label is predicted above this probability (default 0.5)"))
        thresholds: dict[str, dict[str, float]] = Field(default_factory=dict, description=(
            "per dataset, decision thresholds by label: multi_label, a label is predicted above its own; with two "
            "labels, one label is predicted when its probability reaches its threshold, else the other (what "
            "tune_thresholds writes)"))
        tune_thresholds: bool = Field(default=False, description=(
            "after training, choose the thresholds on the validation split (two labels: the best macro F1; "
            "multi_label: each label's best F1) and save them in the model's config as thresholds"))
        pooling: Literal["mean", "max", "attention"] = Field(default="mean", description=(
            "how the sentence's token states are pooled: their mean, their max, or attention (a learned score per "
            "token, softmax over the sentence: the words that decide the label weigh most)"))
        hidden_size: int = Field(default=150, ge=1, description="the feed-forward's hidden size")
        dropout: float = Field(default=0.3, ge=0, lt=1, description="dropout in the feed-forward")

        @field_validator("threshold")
        @classmethod
        def _multi_label_only(cls, value: float | None, info: ValidationInfo) -> float | None:
            if value is not None and not info.data.get("multi_label"):
                raise ValueError("a threshold applies to multi_label classification only; set multi_label to true")
            return value

        @field_validator("thresholds")
        @classmethod
        def _probabilities(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
            for dataset, by_label in value.items():
                for label, threshold in by_label.items():
                    if not 0 < threshold < 1:
                        raise ValueError(f"{dataset}.{label}: a threshold is a probability between 0 and 1, "
                                         f"got {threshold}")
            return value

    def __init__(self, config: TaskConfig, input_dim: int, labels: dict[str, list[str]]):
        super().__init__(config, input_dim, labels)
        self.classifiers = nn.ModuleDict({
            ns: feedforward(input_dim, self.options.hidden_size, len(names), self.options.dropout)
            for ns, names in labels.items()
        })
        self.label_index = {ns: {label: i for i, label in enumerate(names)} for ns, names in labels.items()}
        if self.options.pooling == "attention":
            self.attention = nn.ModuleDict({ns: nn.Linear(input_dim, 1) for ns in labels})
        self._check_thresholds(config.name)

    def _check_thresholds(self, task: str) -> None:
        """Thresholds name this task's datasets and their labels; a single-label head decides by a threshold
        between two labels only, with one of them thresholded."""
        key = f"tasks.{task}.options.thresholds"
        for dataset, by_label in self.options.thresholds.items():
            if dataset not in self.datasets:
                raise ConfigError(f"{key}.{dataset}: not a dataset of this task ({', '.join(self.datasets)})")
            names = self.labels[namespace(dataset, task)]
            unknown = sorted(set(by_label) - set(names))
            if unknown:
                raise ConfigError(f"{key}.{dataset}: unknown labels {unknown}; the head has {names}")
            if not self.options.multi_label and (len(names) != 2 or len(by_label) != 1):
                raise ConfigError(f"{key}.{dataset}: a single-label head takes one threshold and only between two "
                                  f"labels; it has {len(names)} labels and {len(by_label)} thresholds")
        if self.options.tune_thresholds and not self.options.multi_label:
            many = {ns: len(names) for ns, names in self.labels.items() if len(names) != 2}
            if many:
                raise ConfigError(f"tasks.{task}.options.tune_thresholds: a single-label head tunes a threshold "
                                  f"between two labels only; {', '.join(f'{ns} has {n}' for ns, n in many.items())}")

    @classmethod
    def main_metrics(cls, options: "SentenceClassifier.Options") -> tuple[str, ...]:
        return ("micro_f1", "macro_f1", "accuracy") if options.multi_label else ("macro_f1", "accuracy")

    @classmethod
    def label_sets(cls, config: TaskConfig, documents: dict[str, list[Document]]) -> dict[str, list[str]]:
        """The labels of each dataset's training sentences; a dataset or a training document without sentence
        labels is an error (the classifier would have nothing to learn)."""
        labels = {}
        for dataset in config.datasets:
            unlabelled = next((doc.doc_id for doc in documents[dataset] if not doc.sentence_labels), None)
            if unlabelled is not None:
                raise ConfigError(f"tasks.{config.name}: training document {unlabelled!r} of dataset {dataset!r} has no "
                                  "sentence labels; the classifier needs a reader that gives them (e.g. ade)")
            labels[namespace(dataset, config.name)] = sorted(
                {label for doc in documents[dataset] for found in doc.sentence_labels for label in found})
        return labels

    def instances(self, documents: list[Document], dataset: str) -> list[Instance]:
        """Every sentence with its labels; a document without any (text to predict on) gives targets of None. A
        single-label classifier refuses a sentence with no label or several, naming it."""
        ns = namespace(dataset, self.name)
        instances = []
        for doc in documents:
            for index, sentence in enumerate(doc.sentences):
                if not sentence:
                    continue
                target = doc.sentence_labels[index] if doc.sentence_labels else None
                if target is not None and not self.options.multi_label and len(target) != 1:
                    raise DataFormatError(f"dataset {dataset}", None, f"document {doc.doc_id!r}, sentence {index} "
                                          f"({' '.join(sentence[:8])!r}...): {len(target)} sentence labels "
                                          f"{target}; the classifier {self.name!r} needs exactly one")
                instances.append(Instance(sentence, ns, target, source=(doc.doc_id, index),
                                          context=sentence_context(doc, index)))
        return instances

    def collate(self, instances: list[Instance]) -> dict[str, torch.Tensor]:
        """Multi-hot gold labels (B, labels); labels the head does not know are left out."""
        index = self.label_index[instances[0].namespace]
        gold = torch.zeros(len(instances), len(index))
        for b, instance in enumerate(instances):
            for label in instance.target or ():
                if label in index:
                    gold[b, index[label]] = 1
        return {"gold": gold}

    def _logits(self, states: torch.Tensor, mask: torch.Tensor, ns: str) -> torch.Tensor:
        weights = mask.unsqueeze(-1).to(states.dtype)
        if self.options.pooling == "mean":
            pooled = (states * weights).sum(1) / weights.sum(1).clamp(min=1)
        elif self.options.pooling == "attention":
            scores = self.attention[ns](states).squeeze(-1).float().masked_fill(~mask, float("-inf"))
            pooled = (scores.softmax(1).to(states.dtype).unsqueeze(-1) * states).sum(1)
        else:
            pooled = states.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1)
        return self.classifiers[ns](pooled).float()

    def loss(self, states: torch.Tensor, mask: torch.Tensor, batch: TaskBatch) -> torch.Tensor:
        logits, gold = self._logits(states, mask, batch.namespace), batch["gold"]
        if self.options.multi_label:
            return nn.functional.binary_cross_entropy_with_logits(logits, gold, reduction="sum") / len(batch)
        return nn.functional.cross_entropy(logits, gold, reduction="sum") / len(batch)

    def decode(self, states: torch.Tensor, mask: torch.Tensor, batch: TaskBatch) -> list[SentencePrediction]:
        logits = self._logits(states, mask, batch.namespace)
        probabilities = (logits.sigmoid() if self.options.multi_label else logits.softmax(-1)).cpu().tolist()
        names = self.labels[batch.namespace]
        thresholds = self.options.thresholds.get(split_namespace(batch.namespace)[0], {})
        return [SentencePrediction(instance.source[1], self._choose(dict(zip(names, row)), thresholds),
                                   dict(zip(names, row)))
                for instance, row in zip(batch.instances, probabilities)]

    def _choose(self, probabilities: dict[str, float], thresholds: dict[str, float]) -> tuple[str, ...]:
        if self.options.multi_label:
            default = self.options.threshold or 0.5
            return tuple(label for label, p in probabilities.items() if p > thresholds.get(label, default))
        if thresholds:  # two labels, one threshold (checked at construction)
            ((label, threshold),) = thresholds.items()
            other = next(name for name in probabilities if name != label)
            return (label if probabilities[label] >= threshold else other,)
        return (max(probabilities, key=probabilities.__getitem__),)

    @property
    def tunes(self) -> bool:
        return self.options.tune_thresholds

    def tune(self, decoded: dict[str, list[tuple[SentencePrediction, Instance]]]) -> dict[str, dict]:
        """Per dataset, the thresholds (0.01 ... 0.99) with the best validation score: two labels, the first's
        threshold by macro F1; multi_label, each label's by its own F1. A tie goes to the threshold nearest 0.5."""
        candidates = sorted((t / 100 for t in range(1, 100)), key=lambda t: abs(t - 0.5))
        thresholds = dict(self.options.thresholds)
        for ns, pairs in decoded.items():
            names = self.labels[ns]
            if self.options.multi_label:
                chosen = {label: max(candidates, key=lambda t: self._score(pairs, {label: t}, f"f1_{label}"))
                          for label in names}
            else:
                chosen = {names[0]: max(candidates, key=lambda t: self._score(pairs, {names[0]: t}, "macro_f1"))}
            thresholds[split_namespace(ns)[0]] = chosen
        self.options = self.options.model_copy(update={"thresholds": thresholds})
        return {"thresholds": thresholds}

    def _score(self, pairs: list[tuple[SentencePrediction, Instance]], thresholds: dict[str, float],
               metric: str) -> float:
        """``metric`` of the sentences decided again with ``thresholds``."""
        scores = ClassificationScores(self.options.multi_label)
        for prediction, instance in pairs:
            scores.update(self._choose(prediction.probabilities, thresholds), instance.target)
        return scores.compute().get(metric, 0.0)

    def export(self, prediction: SentencePrediction, offset: int) -> dict[str, list]:
        return {"sentence_labels": [{"sentence": prediction.sentence, "labels": list(prediction.labels),
                                     "probabilities": prediction.probabilities}]}

    def new_scorer(self) -> ClassifierScorer:
        return ClassifierScorer(self.options.multi_label)
