"""The hierarchical model built from a config: embedder, a stack of levels, one head per task at its level.

Each level is a BiLSTM reading [base embedding ; output of the level below] (shortcut connections), so a task
at level k trains levels 1..k; sizes are inferred from the modules below, never configured.
Artefacts follow the Hugging Face layout: ``config.json``, ``labels.json``, ``model.safetensors``.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

import hmtl.tasks  # noqa: F401  (registers the task types)
from hmtl.config import Config, LevelConfig, deep_merge, namespace, parse_config, parse_overrides
from hmtl.errors import HmtlError
from hmtl.modules.embedder import Embedder
from hmtl.registry import TASKS
from hmtl.tasks.base import Instance, Task

WEIGHTS_FILE, CONFIG_FILE, LABELS_FILE = "model.safetensors", "config.json", "labels.json"


class Level(nn.Module):
    def __init__(self, config: LevelConfig, input_dim: int):
        super().__init__()
        self.lstm = nn.LSTM(input_dim, config.hidden_size, config.num_layers, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(config.dropout)
        self.output_dim = 2 * config.hidden_size

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        lengths = mask.sum(1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(inputs, lengths, batch_first=True, enforce_sorted=False)
        output, _ = self.lstm(packed)
        output, _ = nn.utils.rnn.pad_packed_sequence(output, batch_first=True, total_length=inputs.size(1))
        return self.dropout(output)


class HierarchicalModel(nn.Module):
    def __init__(self, config: Config, labels: dict):
        """``labels``: {"characters": [...], "tasks": {task name: {namespace: [labels]}}}."""
        super().__init__()
        self.config = config
        self.label_vocab = labels
        self.embedder = Embedder(config.embedder, labels["characters"])
        self.levels = nn.ModuleList()
        below = 0
        for level_config in config.levels:
            level = Level(level_config, self.embedder.output_dim + below)
            self.levels.append(level)
            below = level.output_dim
        self.tasks = nn.ModuleDict()
        for task_config in config.tasks:
            task_class = TASKS.get(task_config.type, f"tasks.{task_config.name}.type")
            level = self.levels[config.level_index(task_config.level)]
            self.tasks[task_config.name] = task_class(task_config, level.output_dim, labels["tasks"][task_config.name])
        if config.embedder.freeze:
            self.embedder.requires_grad_(False)
        for level, level_config in zip(self.levels, config.levels):
            if level_config.freeze:
                level.requires_grad_(False)

    def level_names(self) -> list[str]:
        return [level.name for level in self.config.levels]

    def task(self, name: str) -> Task:
        return self.tasks[name]

    def namespaces(self) -> list[str]:
        """Every head's label namespace, ``<dataset>__<task>``."""
        return [ns for task in self.tasks.values() for ns in task.namespaces]

    def check_namespaces(self, namespaces: list[str], option: str = "") -> None:
        """The one-line error for namespaces the model has no head for, listing those it has."""
        known = self.namespaces()
        unknown = [ns for ns in namespaces if ns not in known]
        if unknown:
            raise HmtlError(f"{option + ': ' if option else ''}unknown namespace(s) {', '.join(map(str, unknown))}; "
                            f"the model has {', '.join(known)}")

    def encode(
        self, features: list[dict], depth: int, sentence_lengths: list[list[int] | None] | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        """Base embedding, the outputs of the first ``depth`` levels, and the token mask. With ``sentence_lengths``
        (per item, None for a single sentence) the levels see each sentence of a document separately."""
        base, mask = self.embedder(features)
        by_sentence = sentence_lengths is not None and any(lengths and len(lengths) > 1 for lengths in sentence_lengths)
        level_base, level_mask = self._split_sentences(base, mask, sentence_lengths) if by_sentence else (base, mask)
        outputs: list[torch.Tensor] = []
        for level in self.levels[:depth]:
            inputs = level_base if not outputs else torch.cat([level_base, outputs[-1]], dim=-1)
            outputs.append(level(inputs, level_mask))
        if by_sentence:  # back to (items, T, D): each item's sentences concatenated, zero padding after
            outputs = [states.new_zeros(*mask.shape, states.size(-1)).masked_scatter(mask.unsqueeze(-1), states[level_mask])
                       for states in outputs]
        return base, outputs, mask

    @staticmethod
    def _split_sentences(base: torch.Tensor, mask: torch.Tensor, sentence_lengths: list) -> tuple[torch.Tensor, torch.Tensor]:
        """(items, T, D) -> (sentences, T_s, D) and its mask, sentences in item order."""
        pieces = [
            piece
            for b, lengths in enumerate(sentence_lengths)
            for piece in base[b, : int(mask[b].sum())].split(lengths or [int(mask[b].sum())])
        ]
        sentences = nn.utils.rnn.pad_sequence(pieces, batch_first=True)
        return sentences, torch.arange(sentences.size(1)) < torch.tensor([len(p) for p in pieces]).unsqueeze(1)

    def depth(self, task_name: str) -> int:
        """How many levels ``task_name`` reads: up to and including its own."""
        return self.config.level_index(self.config.task(task_name).level) + 1

    def forward(self, batch: dict[str, list[Instance]]) -> dict[str, torch.Tensor]:
        """Training loss of each task of a batch ``{task: instances}``. Tasks joined by ``&`` in the chain bring
        instances of the same units in the same order: one pass through the levels, each head at its own."""
        first = next(iter(batch.values()))
        _, outputs, mask = self.encode([i.features for i in first], max(map(self.depth, batch)),
                                       [i.sentence_lengths for i in first])
        return {name: self.tasks[name].loss(outputs[self.depth(name) - 1], mask, instances)
                for name, instances in batch.items()}

    @torch.no_grad()
    def decode(self, batch: list[Instance], task_name: str) -> list:
        return self.decode_heads([(task_name, batch)])[0]

    @torch.no_grad()
    def decode_heads(self, heads: list[tuple[str, list[Instance]]]) -> list[list]:
        """Predictions of several heads ``(task, instances)`` over the same units in the same order: one pass
        through the levels, each head decoding at its own (as ``forward`` does for a ``&`` batch)."""
        first = heads[0][1]
        _, outputs, mask = self.encode([i.features for i in first], max(self.depth(name) for name, _ in heads),
                                       [i.sentence_lengths for i in first])
        return [self.tasks[name].decode(outputs[self.depth(name) - 1], mask, instances) for name, instances in heads]

    def task_instances(self, documents: dict[str, list], namespaces: set[str] | None = None) -> dict[str, list[Instance]]:
        """Every task's prepared instances from ``{dataset: documents}`` (only those of ``namespaces`` when given);
        tasks with none are left out. Instances that read the same words share one features dict, so a frozen
        transformer encodes a sentence once for all the tasks and datasets that read it."""
        result, shared = {}, {}
        for name, task in self.tasks.items():
            found = []
            for dataset in task.datasets:
                if namespaces is not None and namespace(dataset, name) not in namespaces:
                    continue
                for instance in task.instances(documents.get(dataset, []), dataset):
                    instance.features = shared.setdefault(self.feature_key(instance), instance.features)
                    found.append(instance)
            if found:
                result[name] = self.prepare(found)
        return result

    def feature_key(self, instance: Instance) -> tuple:
        """What the embedder's features of an instance depend on: its words, and its context words when the
        transformer reads context."""
        transformer = self.embedder.transformer
        context = tuple(map(tuple, instance.context)) if transformer is not None and transformer.context else None
        return tuple(instance.tokens), context

    def prepare(self, instances: list[Instance]) -> list[Instance]:
        for instance in instances:
            if not instance.features:  # filled in place: instances of several tasks may share one features dict
                instance.features.update(self.embedder.prepare(instance.tokens, instance.context))
        return instances

    @torch.no_grad()
    def encode_layers(
        self, sentences: list[list[str]], transformer_layers: bool = False
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Token states of every layer for probing, each (B, T, D), plus the (B, T) mask: ``embedder`` (the
        concatenated word representation), then each level by name, and with ``transformer_layers`` each layer of
        the transformer pooled to words (``transformer_0`` = its input embeddings)."""
        was_training = self.training
        self.eval()
        features = [self.embedder.prepare(s) for s in sentences]
        base, outputs, mask = self.encode(features, len(self.levels))
        layers = {"embedder": base}
        layers.update({name: states for name, states in zip(self.level_names(), outputs)})
        transformer = self.embedder.transformer
        if transformer_layers and transformer is not None:
            owners, longest = transformer.owners(features), mask.size(1)
            for index, states in enumerate(transformer.layer_states([f["subwords"] for f in features])):
                layers[f"transformer_{index}"] = transformer.pool(states.float(), owners, longest)
        self.train(was_training)
        return layers, mask

    def save_pretrained(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(directory / WEIGHTS_FILE))
        (directory / CONFIG_FILE).write_text(self.config.model_dump_json(indent=2))
        (directory / LABELS_FILE).write_text(json.dumps(self.label_vocab, indent=1))

    @classmethod
    def from_pretrained(cls, directory: str | Path, overrides: str | dict | None = None) -> "HierarchicalModel":
        """A saved model; ``overrides`` change inference settings of its config (e.g. the transformer's document
        context, bf16), not its shape."""
        directory = Path(directory)
        for name in (WEIGHTS_FILE, CONFIG_FILE, LABELS_FILE):
            if not (directory / name).exists():
                raise HmtlError(f"{directory} is not a saved hmtl model: {name} is missing")
        raw = read_json(directory / CONFIG_FILE)
        config = parse_config(deep_merge(raw, parse_overrides(overrides)) if overrides else raw, str(directory / CONFIG_FILE))
        labels = read_json(directory / LABELS_FILE)
        check_labels(labels, config, directory / LABELS_FILE)
        model = cls(config, labels)
        try:
            weights = load_file(str(directory / WEIGHTS_FILE))
        except Exception as error:  # safetensors raises its own SafetensorError, or OSError, for a damaged file
            raise HmtlError(f"{directory / WEIGHTS_FILE} is damaged or not a safetensors file "
                            f"({str(error).strip().splitlines()[-1][:200]}); retrain, or copy the file again") from None
        try:
            model.load_state_dict(weights)
        except RuntimeError as error:
            raise HmtlError(f"{directory}: the weights do not fit the model its config describes"
                            f"{' with --overrides' if overrides else ''}: {str(error).strip().splitlines()[-1].strip()}") from None
        model.eval()
        return model


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise HmtlError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None


def check_labels(labels, config: Config, path: Path) -> None:
    """labels.json must hold the character list and, for every configured task, its namespaces' labels."""
    expected = '{"characters": [...], "tasks": {task: {namespace: labels}}}'
    if not isinstance(labels, dict) or not isinstance(labels.get("characters"), list) or not isinstance(labels.get("tasks"), dict):
        raise HmtlError(f"{path}: expected {expected}")
    for task in config.tasks:
        if not isinstance(labels["tasks"].get(task.name), dict):
            raise HmtlError(f"{path}: no labels for task {task.name!r}; expected {expected}")


def saved_model_dir(path: str | Path) -> Path:
    """A training run's ``best/`` model, or a saved model folder itself (e.g. a run's ``last/``)."""
    path = Path(path)
    if (path / "best").is_dir():
        return path / "best"
    if (path / WEIGHTS_FILE).exists():
        return path
    raise HmtlError(f"{path} has no trained model (expected {path / 'best'}/ or a saved model folder); "
                    "train one with train.py first")


def load_matching_weights(model: HierarchicalModel, directory: str | Path) -> dict[str, dict[str, int]]:
    """Copy into ``model`` every weight of the saved model in ``directory`` whose name and shape match (HMTL's
    fine-tuning). Returns, per module, how many tensors were loaded, are new (no such name) or were skipped (the
    shape differs, or a head's namespace has other labels there: same shape, other meaning)."""
    try:
        source = load_file(str(Path(directory) / WEIGHTS_FILE))
    except Exception as error:
        raise HmtlError(f"--init_from: {Path(directory) / WEIGHTS_FILE} is damaged or not a safetensors file "
                        f"({str(error).strip().splitlines()[-1][:200]})") from None
    source_labels = read_json(Path(directory) / LABELS_FILE)["tasks"]
    state = model.state_dict()
    report: dict[str, dict[str, int]] = {}
    matching = {}
    for name, tensor in state.items():
        head = _head_of(name, model)
        same_labels = head is None or source_labels.get(head[0], {}).get(head[1]) == model.task(head[0]).labels[head[1]]
        outcome = "new" if name not in source else "skipped" if source[name].shape != tensor.shape or not same_labels else "loaded"
        if outcome == "loaded":
            matching[name] = source[name]
        counts = report.setdefault(module_of(name), {"loaded": 0, "new": 0, "skipped": 0})
        counts[outcome] += 1
    model.load_state_dict(matching, strict=False)
    return report


def _head_of(parameter: str, model: HierarchicalModel) -> tuple[str, str] | None:
    """(task, namespace) of a weight that belongs to one namespace's head, else None."""
    parts = parameter.split(".")
    if parts[0] != "tasks":
        return None
    return next(((parts[1], part) for part in parts[2:] if part in model.task(parts[1]).labels), None)


def module_of(parameter: str) -> str:
    """The module a weight belongs to, as the loading report groups them: ``levels.0``, ``embedder.char_cnn``,
    ``tasks.ner.crfs.conll03__ner``."""
    parts = parameter.split(".")[:-1]
    return ".".join(parts[:4] if parts[0] == "tasks" else parts[:2])


def load_model(serialization_dir: str | Path, overrides: str | dict | None = None) -> HierarchicalModel:
    """The best model of a training run, or a saved model folder; see ``from_pretrained`` for ``overrides``."""
    return HierarchicalModel.from_pretrained(saved_model_dir(serialization_dir), overrides)
