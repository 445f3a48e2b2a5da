"""The ``Task`` interface: the only thing the trainer and the model know about a task.

A task turns ``Document``s into ``Instance``s, computes a loss from the token states of its level, decodes
predictions, and keeps metrics per label namespace (``<dataset>__<task>``). Registering a subclass with
``@TASKS.register("type")`` makes it available to configs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from statistics import mean
from typing import Any, Callable, ClassVar

import torch
from torch import nn

from hmtl.config import MAX_CONTEXT_SUBWORDS, Section, TaskConfig, namespace
from hmtl.data.document import Document, Span
from hmtl.errors import ConfigError
from pydantic import Field, ValidationError


@dataclass
class Instance:
    """One training or evaluation unit (a sentence or a whole document) with its gold target."""

    tokens: list[str]
    namespace: str
    target: Any = None
    features: dict = field(default_factory=dict)  # the embedder's prepared features, filled once
    source: tuple = ()  # (doc_id, sentence index) to map predictions back
    # A whole-document instance's sentence lengths: the levels' BiLSTMs run over each sentence on its own (as in
    # Lee et al. 2017), so a document of a thousand tokens costs as many sequential steps as its longest sentence.
    sentence_lengths: list[int] | None = None
    # The words before and after a sentence in its document, for a transformer that reads document context.
    context: tuple[list[str], list[str]] = ([], [])
    # Under document reading, what the transformer reads for it: its document's subwords and its first word there
    # (set by the model, which knows the reading mode; ``Embedder.prepare``).
    read: tuple | None = None


@dataclass
class TaskBatch:
    """One head's share of a batch: its instances (gold targets, sources) and the tensors its task's ``collate``
    made from them (gold tags, span indices, ...), on the model's device."""

    instances: list[Instance]
    tensors: dict[str, torch.Tensor]

    @property
    def namespace(self) -> str:
        return self.instances[0].namespace

    def __len__(self) -> int:
        return len(self.instances)

    def __getitem__(self, key: str) -> torch.Tensor:
        return self.tensors[key]


def span_json(span: Span, offset: int) -> dict:
    """A predicted span as exported: document-level token offsets (``offset`` = the unit's first token), and its
    label when it has one; the predictor adds the surface text and character offsets."""
    exported: dict = {"start": span.start + offset, "end": span.end + offset}
    if span.label is not None:
        exported["label"] = span.label
    return exported


# Words kept on each side of a sentence: every word has at least one subword, so they fill the largest context the
# transformer may be configured with; the embedder cuts them to its subword budget.
CONTEXT_WORDS = MAX_CONTEXT_SUBWORDS


def sentence_context(document: Document, index: int) -> tuple[list[str], list[str]]:
    """The words of ``document`` before and after its sentence ``index`` (at most CONTEXT_WORDS each side). Only
    the neighbouring sentences needed are visited, so a long document costs no more per sentence than a short one."""
    sentences = document.sentences
    before: list[str] = []
    for i in range(index - 1, -1, -1):
        if len(before) >= CONTEXT_WORDS:
            break
        before = sentences[i] + before
    after: list[str] = []
    for i in range(index + 1, len(sentences)):
        if len(after) >= CONTEXT_WORDS:
            break
        after += sentences[i]
    return before[-CONTEXT_WORDS:], after[:CONTEXT_WORDS]


class Task(nn.Module):
    """Base class; subclasses define ``Options``, ``label_sets``, ``instances``, ``collate``, ``loss``, ``decode``,
    ``export``, ``new_scorer``."""

    class Options(Section):
        batch_size: int | None = Field(default=None, ge=1, description=(
            "instances per batch for this task; default: trainer.batch_size"))

    metric_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: TaskConfig, input_dim: int, labels: dict[str, list[str]]):
        super().__init__()
        self.name = config.name
        self.datasets = list(config.datasets)
        self.options = self.parse_options(config)
        self.metric_names = self.main_metrics(self.options)
        self.labels = labels  # namespace -> label list
        self.input_dim = input_dim

    @classmethod
    def parse_options(cls, config: TaskConfig) -> "Task.Options":
        try:
            return cls.Options.model_validate(config.options)
        except ValidationError as error:
            problems = "; ".join(
                f"tasks.{config.name}.options.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()
            )
            raise ConfigError(problems) from None

    @classmethod
    def main_metrics(cls, options: "Task.Options") -> tuple[str, ...]:
        """The metrics ``summarize`` averages into ``MEAN__<task>_<metric>``; the first selects models."""
        return cls.metric_names

    @classmethod
    def instance_unit(cls, options: "Task.Options") -> str:
        """What one instance is, ``"sentence"`` or ``"document"``: tasks joined by ``&`` must agree."""
        return "sentence"

    def batch_size(self, default: int) -> int:
        return self.options.batch_size or default

    @property
    def namespaces(self) -> list[str]:
        return [namespace(dataset, self.name) for dataset in self.datasets]

    @classmethod
    def label_sets(cls, config: TaskConfig, documents: dict[str, list[Document]]) -> dict[str, list[str]]:
        """Label vocabulary per namespace, from the training documents of each dataset."""
        raise NotImplementedError

    def instances(self, documents: list[Document], dataset: str) -> list[Instance]:
        raise NotImplementedError

    def entity_types(self, ns: str) -> list[str] | None:
        """The entity types the head of ``ns`` can predict; None for a task that predicts no typed spans."""
        return None

    def unreachable(self, instances: list[Instance]) -> str | None:
        """What of the instances' gold the head can never predict, for a log line (e.g. "3 of 120 gold mentions
        are longer than max_width 10"); the scorers keep it in the gold, as misses. None: nothing."""
        return None

    def relabel(self, prediction: Any, mapping: Callable[[str], str | None]) -> Any:
        """A decoded prediction with its entity types passed through ``mapping`` (None: dropped), as gold read with
        a label map or ``keep_labels`` is; a task whose predictions carry entity types overrides this."""
        return prediction

    def collate(self, instances: list[Instance]) -> dict[str, torch.Tensor]:
        """The tensors ``loss`` and ``decode`` read, from the instances alone (CPU, no model state): run in a
        DataLoader worker ahead of the model (``hmtl.training.batching.collated``)."""
        return {}

    def loss(self, states: torch.Tensor, mask: torch.Tensor, batch: TaskBatch) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, states: torch.Tensor, mask: torch.Tensor, batch: TaskBatch) -> list[Any]:
        raise NotImplementedError

    def export(self, prediction: Any, offset: int) -> dict[str, list]:
        """A decoded prediction as JSON: ``{field: [...]}`` of ``span_json`` spans (relations: ``{"head", "tail",
        "label"}``, clusters: lists of spans) or, for token tags, one list per sentence."""
        raise NotImplementedError

    def new_scorer(self) -> Any:
        """A fresh metric accumulator with ``update(predictions, batch)`` and ``compute() -> dict``."""
        raise NotImplementedError

    @property
    def tunes(self) -> bool:
        """Whether the head chooses decision settings on validation predictions after training (``tune``)."""
        return False

    def tune(self, decoded: dict[str, list[tuple[Any, Instance]]]) -> dict[str, Any]:
        """Options chosen from the validation predictions (per namespace, (prediction, instance) pairs) and set
        on the head; returned so that the model's config, which is saved with it, carries them."""
        return {}

    def summarize(self, per_namespace: dict[str, dict[str, float]]) -> dict[str, float]:
        """Flatten to ``<namespace>_<metric>`` plus ``MEAN__<task>_<metric>`` across this task's namespaces."""
        flat = {f"{ns}_{key}": value for ns, metrics in per_namespace.items() for key, value in metrics.items()}
        for key in self.metric_names:
            values = [metrics[key] for metrics in per_namespace.values() if key in metrics]
            if values:
                flat[f"MEAN__{self.name}_{key}"] = mean(values)
        return flat
