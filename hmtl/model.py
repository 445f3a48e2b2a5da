"""The hierarchical model built from a config: embedder, a stack of levels, one head per task at its level.

Each level is a BiLSTM reading [base embedding ; output of the level below] (shortcut connections), so a task
at level k trains levels 1..k; sizes are inferred from the modules below, never configured.
Artefacts follow the Hugging Face layout: ``config.json``, ``labels.json``, ``model.safetensors``.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

import hmtl.tasks  # noqa: F401  (registers the task types)
from hmtl.checks import parse_config
from hmtl.config import Config, deep_merge, namespace, parse_overrides
from hmtl.device import autocast, resolve_device
from hmtl.errors import HmtlError
from hmtl.modules.bilstm import BiLstm
from hmtl.modules.embedder import Embedder
from hmtl.registry import TASKS
from hmtl.tasks.base import Instance, Task, TaskBatch

WEIGHTS_FILE, CONFIG_FILE, LABELS_FILE = "model.safetensors", "config.json", "labels.json"

logger = logging.getLogger(__name__)


@dataclass
class Batch:
    """What the model reads in one step: the units (sentences or documents) the embedder and levels encode, the
    embedder's input tensors, and each head's share (task name, ``TaskBatch``); heads joined by ``&`` read the
    same units."""

    units: list[Instance]
    inputs: dict[str, torch.Tensor]
    heads: list[tuple[str, TaskBatch]]

    @classmethod
    def of(cls, units: list[Instance], heads: list[tuple[str, list[Instance]]], tensors: tuple[dict, list[dict]]) -> "Batch":
        """A batch from its instances and the tensors ``HierarchicalModel.collate_tensors`` made of them."""
        inputs, head_tensors = tensors
        return cls(units, inputs, [(name, TaskBatch(found, t)) for (name, found), t in zip(heads, head_tensors)])

    def to(self, device: torch.device) -> "Batch":
        def move(tensors: dict) -> dict:
            return {key: value.to(device, non_blocking=True) for key, value in tensors.items()}

        return Batch(self.units, move(self.inputs), [(name, TaskBatch(h.instances, move(h.tensors))) for name, h in self.heads])


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
            level = BiLstm(self.embedder.output_dim + below, level_config.hidden_size, level_config.num_layers,
                           level_config.dropout)
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

    def tune(self, name: str, decoded: dict[str, list[tuple[Any, Instance]]]) -> dict[str, Any]:
        """Task ``name`` chooses its decision settings on validation predictions (``Task.tune``); they go into the
        config, so a saved model decides as the tuned one does."""
        options = self.tasks[name].tune(decoded)
        next(t for t in self.config.tasks if t.name == name).options.update(options)
        return options

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

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def inference_precision(self) -> torch.autocast:
        """Autocast as the model was trained and validated (``trainer.bf16`` / ``fp16``), so its predictions are
        the ones its scores describe; fp16 only on a GPU (a CPU has no fp16 kernels for it)."""
        trainer = self.config.trainer
        return autocast(self.device, trainer.bf16, trainer.fp16 and self.device.type == "cuda")

    def collate_tensors(self, units: list[Instance], heads: list[tuple[str, list[Instance]]]) -> tuple[dict, list[dict]]:
        """A batch's tensors, from its instances alone: the embedder's inputs and each head's ``Task.collate``.
        No model state is read, so DataLoader workers make them ahead of the model."""
        return self.embedder.collate([u.features for u in units]), [self.tasks[name].collate(found) for name, found in heads]

    def collate(self, heads: list[tuple[str, list[Instance]]], units: list[Instance] | None = None) -> Batch:
        """``heads`` (task, instances) over the same units, collated in this process and moved to the model's device."""
        units = heads[0][1] if units is None else units
        return Batch.of(units, heads, self.collate_tensors(units, heads)).to(self.device)

    def encode(self, batch: Batch, depth: int,
               shared: dict | None = None) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        """Base embedding, the outputs of the first ``depth`` levels, and the token mask. A unit with several
        sentences (a document) goes through the levels sentence by sentence. ``shared`` (inference): the level
        states of every sentence encoded so far, by its place in its reading; a batch whose sentences are all
        there skips the levels (a document's coreference reads the states its sentences' heads were given)."""
        base, mask = self.embedder([u.features for u in batch.units], batch.inputs)
        # every length comes from the units on the host: reading them back from the device would stall a GPU
        # (a document's empty sentences add no words: left out of the split)
        sentence_lengths = [[n for n in u.sentence_lengths if n] if u.sentence_lengths else [u.features["length"]]
                            for u in batch.units]
        places = self._sentence_places(batch.units, sentence_lengths) if shared is not None else None
        if places and all(len(shared.get(key, ())) >= depth for unit in places for key, _, _ in unit):
            return base, [self._join_sentences(torch.cat([shared[key][level] for unit in places for key, _, _ in unit]), mask)
                          for level in range(depth)], mask
        by_sentence = any(len(lengths) > 1 for lengths in sentence_lengths)
        lengths = torch.tensor([n for unit in sentence_lengths for n in unit])  # one per unit, or per sentence
        level_base, level_mask = self._split_sentences(base, sentence_lengths, lengths) if by_sentence else (base, mask)
        outputs: list[torch.Tensor] = []
        for level in self.levels[:depth]:
            inputs = level_base if not outputs else torch.cat([level_base, outputs[-1]], dim=-1)
            outputs.append(level(inputs, level_mask, lengths))
        if by_sentence:  # back to (items, T, D): each item's sentences concatenated, zero padding after
            outputs = [self._join_sentences(states[level_mask], mask) for states in outputs]
        for b, unit in enumerate(places or ()):
            for key, start, length in unit:
                if len(shared.get(key, ())) < depth:
                    shared[key] = [states[b, start:start + length] for states in outputs]
        return base, outputs, mask

    @staticmethod
    def _join_sentences(words: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(words, D) states of every item's words, item after item -> (items, T, D), zero padding after."""
        return words.new_zeros(*mask.shape, words.size(-1)).masked_scatter(mask.unsqueeze(-1), words)

    @staticmethod
    def _sentence_places(units: list[Instance], sentence_lengths: list[list[int]]) -> list[list[tuple]]:
        """Each unit's sentences as (key, first word in the unit, length). The key is the sentence's place in what
        the transformer read (its document, first and end word): a sentence and the same sentence inside its
        document get one key under document reading, where their embeddings are the same; a unit read alone
        (sentence reading) has a reading of its own, so its keys are its own. With no transformer, the words are
        the key."""
        places = []
        for unit, lengths in zip(units, sentence_lengths):
            read, start, unit_places = unit.features.get("read"), 0, []
            for length in lengths:
                key = ((id(read[0]), read[1] + start, read[1] + start + length) if read is not None
                       else tuple(unit.tokens[start:start + length]))
                unit_places.append((key, start, length))
                start += length
            places.append(unit_places)
        return places

    @staticmethod
    def _split_sentences(base: torch.Tensor, sentence_lengths: list[list[int]],
                         lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(items, T, D) -> (sentences, T_s, D) and its mask, sentences in item order; ``lengths``: every sentence's,
        flattened, on the host."""
        pieces = [piece for b, split in enumerate(sentence_lengths) for piece in base[b, : sum(split)].split(split)]
        sentences = nn.utils.rnn.pad_sequence(pieces, batch_first=True)
        on_device = lengths.to(base.device, non_blocking=True)
        return sentences, torch.arange(sentences.size(1), device=base.device) < on_device.unsqueeze(1)

    def depth(self, task_name: str) -> int:
        """How many levels ``task_name`` reads: up to and including its own."""
        return self.config.level_index(self.config.task(task_name).level) + 1

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Training loss of each head of a batch. Tasks joined by ``&`` in the chain bring instances of the same
        units in the same order: one pass through the levels, each head at its own."""
        _, outputs, mask = self.encode(batch, max(self.depth(name) for name, _ in batch.heads))
        return {name: self.tasks[name].loss(outputs[self.depth(name) - 1], mask, head) for name, head in batch.heads}

    @torch.no_grad()
    def decode_heads(self, batch: Batch, shared: dict | None = None) -> list[list]:
        """Predictions of each head of a batch (as ``forward``: one pass through the levels, each head decoding at
        its own), in the order of ``batch.heads``; ``shared``: as ``encode``'s."""
        _, outputs, mask = self.encode(batch, max(self.depth(name) for name, _ in batch.heads), shared)
        return [self.tasks[name].decode(outputs[self.depth(name) - 1], mask, head) for name, head in batch.heads]

    def task_instances(self, documents: dict[str, list], namespaces: set[str] | None = None) -> dict[str, list[Instance]]:
        """Every task's prepared instances from ``{dataset: documents}`` (only those of ``namespaces`` when given);
        tasks with none are left out. Instances that read the same words share one features dict, so a frozen
        transformer encodes a sentence once for all the tasks and datasets that read it."""
        result, shared, reads = {}, {}, {}
        transformer = self.embedder.transformer
        by_document = transformer is not None and transformer.reading == "document"
        for name, task in self.tasks.items():
            found = []
            for dataset in task.datasets:
                if namespaces is not None and namespace(dataset, name) not in namespaces:
                    continue
                dataset_documents = documents.get(dataset, [])
                by_id = {document.doc_id: document for document in dataset_documents} if by_document else {}
                for instance in task.instances(dataset_documents, dataset):
                    if by_document:
                        instance.read = self._document_read(by_id[instance.source[0]], instance, reads)
                    instance.features = shared.setdefault(self.feature_key(instance), instance.features)
                    found.append(instance)
            if found:
                result[name] = self.prepare(found)
        return result

    def _document_read(self, document, instance: Instance, reads: dict) -> tuple:
        """(the document's subwords, the instance's first word in it): one ``DocumentSubwords`` per distinct
        document text, shared by every task and dataset that reads it (GUM and OntoGUM are the same texts)."""
        if id(document) not in reads:
            text = tuple(document.tokens)
            if text not in reads:
                reads[text] = self.embedder.transformer.document(document.sentences)
            reads[id(document)] = reads[text], document.sentence_offsets()
        subwords, offsets = reads[id(document)]
        return subwords, offsets[instance.source[1]] if len(instance.source) > 1 else 0

    def feature_key(self, instance: Instance) -> tuple:
        """What the embedder's features of an instance depend on: its words, and its context words when the
        transformer reads context, or the document and place it is read in under document reading."""
        transformer = self.embedder.transformer
        context = tuple(map(tuple, instance.context)) if transformer is not None and transformer.context else None
        read = (id(instance.read[0]), instance.read[1]) if instance.read is not None else None
        return tuple(instance.tokens), context, read

    def prepare(self, instances: list[Instance]) -> list[Instance]:
        transformer, split = self.embedder.transformer, 0
        for instance in instances:
            if not instance.features:  # filled in place: instances of several tasks may share one features dict
                instance.features.update(self.embedder.prepare(instance.tokens, instance.context, instance.read))
                if "read" in instance.features:  # the units a document's reading fills in one go
                    instance.features["read"][0].units.append(instance.features)
                split += (transformer is not None and instance.sentence_lengths is None
                          and len(instance.features["subwords"]) > transformer.window)
        if split:
            logger.info("%d sentence(s) longer than the transformer's window of %d subwords: each read in overlapping "
                        "windows", split, transformer.window)
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
        units = [Instance(tokens=s, namespace="", features=self.embedder.prepare(s)) for s in sentences]
        base, outputs, mask = self.encode(self.collate([], units), len(self.levels))
        features = [u.features for u in units]
        layers = {"embedder": base}
        layers.update({name: states for name, states in zip(self.level_names(), outputs)})
        transformer = self.embedder.transformer
        if transformer_layers and transformer is not None:
            owners, longest = transformer.owners(features).to(mask.device), mask.size(1)
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
    def from_pretrained(cls, directory: str | Path, overrides: str | dict | None = None,
                        device: str = "cpu") -> "HierarchicalModel":
        """A saved model on ``device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``: the ``--device`` of the commands);
        ``overrides`` change inference settings of its config (e.g. the transformer's document context, bf16),
        not its shape."""
        directory = Path(directory)
        check_model_files(directory)
        raw = read_json(directory / CONFIG_FILE)
        parsed = parse_overrides(overrides) if overrides else None
        config = parse_config(deep_merge(raw, parsed) if parsed else raw, str(directory / CONFIG_FILE), parsed)
        labels = read_json(directory / LABELS_FILE)
        check_labels(labels, config, directory / LABELS_FILE)
        model = cls(config, labels)
        model.load_weights(directory, " with --overrides" if overrides else "")
        model.eval()
        return model.to(resolve_device(device, "--device"))

    def load_weights(self, directory: str | Path, described: str = "") -> None:
        """The weights of a saved model folder into this model, or the one-line error for a damaged file or weights
        of another shape (``described``: how this model's config came about, for that error)."""
        weights = read_weights(directory, advice="; retrain, or copy the file again")
        try:
            self.load_state_dict(weights)
        except RuntimeError as error:
            raise HmtlError(f"{directory}: the weights do not fit the model its config describes{described}: "
                            f"{str(error).strip().splitlines()[-1].strip()}") from None


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise HmtlError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None


def read_weights(directory: str | Path, option: str = "", advice: str = "") -> dict[str, torch.Tensor]:
    """The weights of a saved model folder, or the one-line error for a damaged file (``option``: the command-line
    option it came from; ``advice``: what to do about it)."""
    path = Path(directory) / WEIGHTS_FILE
    try:
        return load_file(str(path))
    except Exception as error:  # safetensors raises its own SafetensorError, or OSError, for a damaged file
        raise HmtlError(f"{option}{path} is damaged or not a safetensors file "
                        f"({str(error).strip().splitlines()[-1][:200]}){advice}") from None


def check_labels(labels, config: Config, path: Path) -> None:
    """labels.json must hold the character list and, for every configured task, its namespaces' labels."""
    expected = '{"characters": [...], "tasks": {task: {namespace: labels}}}'
    if not isinstance(labels, dict) or not isinstance(labels.get("characters"), list) or not isinstance(labels.get("tasks"), dict):
        raise HmtlError(f"{path}: expected {expected}")
    for task in config.tasks:
        if not isinstance(labels["tasks"].get(task.name), dict):
            raise HmtlError(f"{path}: no labels for task {task.name!r}; expected {expected}")


def check_model_files(directory: Path) -> None:
    """A saved model folder holds its weights, config and labels: a one-line error names the first one missing."""
    for name in (WEIGHTS_FILE, CONFIG_FILE, LABELS_FILE):
        if not (directory / name).exists():
            raise HmtlError(f"{directory} is not a saved hmtl model: {name} is missing (a model folder holds "
                            f"{WEIGHTS_FILE}, {CONFIG_FILE} and {LABELS_FILE}, as train.py writes them)")


def saved_model_dir(path: str | Path) -> Path:
    """A training run's ``best/`` model, or a saved model folder itself (e.g. a run's ``last/``), checked complete."""
    path = Path(path)
    if (path / "best").is_dir():
        path = path / "best"
    elif not (path / WEIGHTS_FILE).exists():
        raise HmtlError(f"{path} has no trained model (expected {path / 'best'}/ or a saved model folder); "
                        "train one with train.py first")
    check_model_files(path)
    return path


def load_matching_weights(model: HierarchicalModel, directory: str | Path) -> dict[str, dict[str, int]]:
    """Copy into ``model`` every weight of the saved model in ``directory`` whose name and shape match (HMTL's
    fine-tuning). Returns, per module, how many tensors were loaded, are new (no such name) or were skipped (the
    shape differs, or a head's namespace has other labels there: same shape, other meaning)."""
    source = read_weights(directory, option="--init_from: ")
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


def load_model(serialization_dir: str | Path, overrides: str | dict | None = None, device: str = "cpu") -> HierarchicalModel:
    """The best model of a training run, or a saved model folder; see ``from_pretrained``."""
    return HierarchicalModel.from_pretrained(saved_model_dir(serialization_dir), overrides, device)
