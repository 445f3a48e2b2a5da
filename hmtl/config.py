"""The experiment configuration: a JSON file validated on load, so a typo stops the run before any work.

Every section is a pydantic model with ``extra="forbid"``: an unknown key is an error that names it, and so is a
missing required one. ``${HMTL_DATA_DIR}`` in any string expands to the data folder (default ``data``).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hmtl.errors import ConfigError

DATA_DIR_VARIABLE = "HMTL_DATA_DIR"
PACKAGE_DATA_VARIABLE = "HMTL_PACKAGE_DATA"  # expands to the bundled sample corpus folder


NAMESPACE_SEPARATOR = "__"  # a label namespace is <dataset>__<task>; dataset names may not hold it


def namespace(dataset: str, task: str) -> str:
    return f"{dataset}{NAMESPACE_SEPARATOR}{task}"


def split_namespace(name: str) -> tuple[str, str]:
    """``conll03__ner`` -> ``("conll03", "ner")``."""
    dataset, _, task = name.partition(NAMESPACE_SEPARATOR)
    return dataset, task


def config_namespaces(tasks: list["TaskConfig"]) -> list[str]:
    """Every task's namespaces, in config order."""
    return [namespace(dataset, task.name) for task in tasks for dataset in task.datasets]


class Section(BaseModel):
    # strict: "8" is not an integer and 1 is not a boolean; a typo in a type is an error, not a silent coercion
    model_config = ConfigDict(extra="forbid", protected_namespaces=(), strict=True)


class SplitSource(Section):
    """A split read with its own reader, e.g. a corpus trained from JSON lines but tested on its official IOB2 file."""

    path: str = Field(description="the split's file or folder")
    reader: str | None = Field(default=None, description="this split's reader; default: the dataset's")
    reader_options: dict[str, Any] | None = Field(default=None, description=(
        "this split's reader options; default: the dataset's reader_options"))


class DatasetConfig(Section):
    """One corpus: which reader parses it, where its splits live, and how its entity types are renamed or dropped."""

    reader: str = Field(description="the registered reader that parses its files (see Readers below, and docs/DATA.md)")
    reader_options: dict[str, Any] = Field(default_factory=dict, description="the reader's keyword options")
    train: str | SplitSource | None = Field(default=None, description=(
        "the training split: a path, or {path, reader, reader_options} to read it with a reader of its own"))
    validation: str | SplitSource | None = Field(default=None, description="the validation split, as train")
    test: str | SplitSource | None = Field(default=None, description="the test split, as train")
    validation_fraction: float | None = Field(default=None, gt=0, lt=1, description=(
        "hold out the last fraction of the training documents as the validation split (for corpora without one)"))
    max_documents: int | None = Field(default=None, ge=1, description="keep only the first N documents of each split")
    label_map: dict[str, str | None] = Field(default_factory=dict, description=(
        "entity types renamed (type -> new type) or dropped (type -> null) when the corpus is read"))
    keep_labels: list[str] | None = Field(default=None, min_length=1, description=(
        "keep only these entity types (after label_map); the others become O / no entity"))

    @model_validator(mode="after")
    def _one_validation_source(self) -> "DatasetConfig":
        if self.validation_fraction is not None and self.validation is not None:
            raise ValueError("give either validation or validation_fraction, not both")
        return self


class GloveConfig(Section):
    dim: Literal[50] = Field(default=50, description="GloVe 6B vectors of this size (frozen, from their PyPI package)")


class CharCnnConfig(Section):
    embedding_dim: int = Field(default=30, ge=1, description="size of each character's embedding")
    num_filters: int = Field(default=50, ge=1, description="convolution filters: the size of a word's character vector")
    kernel_size: int = Field(default=3, ge=1, description="characters each filter reads at once")


MAX_WINDOW_SUBWORDS = 510  # BERT-style models see 512 positions, two of them [CLS] and [SEP]
MAX_CONTEXT_SUBWORDS = 100  # sentence instances keep this many words of context on each side


class TransformerConfig(Section):
    path: str = Field(default="minilm", description=(
        'a local model folder, "minilm" (all-MiniLM-L6-v2, bundled) or "mpnet" (all-mpnet-base-v2, 12 x 768: pip '
        'install "hmtl[mpnet]"; hmtl/modules/named_encoders.py)'))
    fine_tune: bool = Field(default=False, description=(
        "train the transformer's weights too (at trainer.transformer_learning_rate); false keeps it frozen"))
    scalar_mix: bool = Field(default=True, description=(
        "a learned weighted sum of all the transformer's layers (ELMo's scalar mix); false: its last layer"))
    pooling: Literal["first", "mean"] = Field(default="mean", description=(
        "a word's state from its subwords: the first subword's, or their mean"))
    context: int = Field(default=0, ge=0, le=MAX_CONTEXT_SUBWORDS, description=(
        "subwords of the neighbouring sentences given to the transformer on each side of a sentence (document "
        f"context, as FLERT), at most {MAX_CONTEXT_SUBWORDS}; 0: the sentence alone"))
    cache: Literal["memory", "disk"] = Field(default="memory", description=(
        "where a frozen transformer's states are kept between epochs: in memory, or in a temporary file (the "
        "operating system's page cache holds it, not the process: for corpora of millions of tokens)"))
    reading: Literal["sentence", "document"] = Field(default="sentence", description=(
        'what the transformer reads: "document", each document once in overlapping windows, every task\'s word '
        'states (sentences and whole documents) taken from that one pass, with the surrounding text as context; '
        '"sentence", each unit alone (a sentence, or a whole-document task\'s document)'))
    window: int = Field(default=MAX_WINDOW_SUBWORDS, ge=32, le=MAX_WINDOW_SUBWORDS, description=(
        f"subwords per window the transformer reads (at most {MAX_WINDOW_SUBWORDS}, its 512 positions less [CLS] "
        "and [SEP]); windows overlap by a fifth, each subword's state taken where it sits farthest from an edge"))

    @model_validator(mode="after")
    def _one_kind_of_context(self) -> "TransformerConfig":
        if self.reading == "document" and self.context:
            raise ValueError(f"context: {self.context}, but reading \"document\" already reads each sentence within "
                             "its document; set context to 0 (or reading to \"sentence\")")
        return self


FREEZE = "keep these weights as they are (e.g. those loaded with --init_from): the optimizer never sees them"


class EmbedderConfig(Section):
    glove: GloveConfig | None = Field(default_factory=GloveConfig, description="GloVe word vectors; null: none")
    char_cnn: CharCnnConfig | None = Field(default_factory=CharCnnConfig, description=(
        "a character CNN's word vectors; null: none"))
    transformer: TransformerConfig | None = Field(default=None, description=(
        "a transformer's word states beside the others; null: none"))
    dropout: float = Field(default=0.5, ge=0, lt=1, description="dropout on the concatenated word embedding")
    freeze: bool = Field(default=False, description=FREEZE)

    @model_validator(mode="after")
    def _frozen_transformer_is_not_fine_tuned(self) -> "EmbedderConfig":
        if self.freeze and self.transformer is not None and self.transformer.fine_tune:
            raise ValueError("freeze: true keeps the transformer fixed too; set transformer.fine_tune to false")
        return self


class LevelConfig(Section):
    """One level of the hierarchy: a BiLSTM reading [base embedding ; level below] (shortcut connection)."""

    name: str = Field(min_length=1, description="what tasks[].level names it by")
    hidden_size: int = Field(default=200, ge=1, description="the BiLSTM's size in each direction")
    num_layers: int = Field(default=1, ge=1, description="stacked BiLSTM layers in this level")
    dropout: float = Field(default=0.5, ge=0, lt=1, description="dropout on the level's output")
    freeze: bool = Field(default=False, description=FREEZE)


class TaskConfig(Section):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_\-]+$", description=(
        "the task's name, in metric names and namespaces (<dataset>__<name>): letters, digits, _ and -"))
    type: str = Field(description="the registered task type (see Task types below)")
    level: str = Field(description="the level whose states the task reads (it trains that level and those below)")
    datasets: list[str] = Field(min_length=1, description=(
        "the datasets it trains on, a head (label namespace) for each"))
    options: dict[str, Any] = Field(default_factory=dict, description="the task type's options")


class SamplerConfig(Section):
    """``type`` is any registered sampler (``hmtl.training.samplers``, or a module named in ``include``); the other
    keys are that sampler's options, checked by it with the registries (``hmtl.checks``)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(default="proportional", description=(
        "the registered sampler (see Samplers below); its options are the section's other keys"))

    @model_validator(mode="before")
    @classmethod
    def _drop_saved_temperature(cls, raw: Any) -> Any:
        """Runs saved while ``temperature`` was a key of every sampler carry its default, 2.0, under uniform and
        proportional, which take no options: dropped so that those runs still load."""
        legacy = isinstance(raw, dict) and raw.get("type", "proportional") in ("uniform", "proportional")
        if legacy and raw.get("temperature") == 2.0:
            return {key: value for key, value in raw.items() if key != "temperature"}
        return raw


class MlflowConfig(Section):
    """Optional MLflow tracking of a training, beside TensorBoard (``hmtl.tracking``; needs ``hmtl[tracking]``)."""

    tracking_uri: str = Field(default="sqlite:///mlflow.db", min_length=1, description=(
        "where runs are stored: a SQLite file (MLflow's own default store; sqlite:///<path>, relative to the working "
        "directory, artifacts in ./mlruns), a local folder (file:<path>) or a tracking server (http://...)"))
    experiment: str = Field(default="hmtl", min_length=1, description=(
        "the MLflow experiment the run goes to (created when it does not exist)"))
    run_name: str | None = Field(default=None, min_length=1, description=(
        "the MLflow run's name; default: the serialization directory's name"))


DEVICE_NAMES = re.compile(r"auto|cpu|cuda(:[0-9]+)?")  # what trainer.device and --device accept


class TrainerConfig(Section):
    num_epochs: int = Field(default=30, ge=1, description="the most epochs (early stopping may end sooner)")
    batch_size: int = Field(default=32, ge=1, description=(
        "instances per batch (a task's batch_size option overrides it)"))
    learning_rate: float = Field(default=1e-3, gt=0, description=(
        "AdamW's learning rate, for every weight but a fine-tuned transformer's"))
    transformer_learning_rate: float = Field(default=5e-5, gt=0, description=(
        "the fine-tuned transformer's learning rate"))
    weight_decay: float = Field(default=0.0, ge=0, description="AdamW's decoupled weight decay")
    warmup_ratio: float = Field(default=0.0, ge=0, lt=1, description=(
        "share of all updates over which the learning rate rises linearly from 0"))
    decay: Literal["linear", "none"] = Field(default="none", description=(
        "after warmup: linear decay to 0 at the last update, or none"))
    grad_clipping: float = Field(default=5.0, gt=0, description="the gradients' largest norm")
    accumulation_steps: int = Field(default=1, ge=1, description="steps whose gradients are summed before each update")
    patience: int = Field(default=5, ge=1, description=(
        "epochs without a better validation_metric before training stops"))
    validation_metric: str = Field(default="+MEAN__all", description=(
        "+ (higher is better) or - then a metric name: MEAN__all, MEAN__<task>_<metric> or <namespace>_<metric>"))
    device: str = Field(default="auto", description=(
        "auto (CUDA when available, else CPU), cpu, cuda or cuda:N; the run's validation and test follow it "
        "(evaluate.py, predict.py and hmtl serve take --device)"))
    bf16: bool = Field(default=False, description="autocast in bfloat16 (CPU or CUDA)")
    fp16: bool = Field(default=False, description="autocast in float16 with a gradient scaler (CUDA)")
    num_workers: int = Field(default=0, ge=0, description=(
        "DataLoader worker processes that collate batches ahead of the model; 0 collates in the training process"))
    num_threads: int | None = Field(default=None, ge=1, description="torch's CPU threads; default: torch's choice")
    max_steps_per_epoch: int | None = Field(default=None, ge=1, description=(
        "cap each epoch at this many steps (quick trials); default: every batch of the epoch"))
    checkpoint_every_minutes: float | None = Field(default=5.0, gt=0, description=(
        "also write last/ during an epoch this often (at an update), so an interrupted epoch resumes where it was"))
    checkpoint_every_updates: int | None = Field(default=None, ge=1, description="the same, every N updates")
    mlflow: MlflowConfig | None = Field(default=None, description=(
        "also log params, per-epoch and test metrics to MLflow (hmtl.tracking); default: TensorBoard only"))

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if not DEVICE_NAMES.fullmatch(value):
            raise ValueError(f"unknown device {value!r}: expected auto, cpu, cuda or cuda:N")
        return value

    @model_validator(mode="after")
    def _one_precision(self) -> "TrainerConfig":
        if self.bf16 and self.fp16:
            raise ValueError("bf16 and fp16 are both true; choose one")
        return self


class Config(Section):
    include: list[str] = Field(default_factory=list, description=(
        "modules imported before the config is checked, so that it can name the samplers, task types and readers "
        "they register (e.g. [\"my_samplers\"]); each must be importable: installed, or its folder on PYTHONPATH"))
    seed: int = Field(default=13, description="seeds Python's, NumPy's and torch's random numbers")
    data: dict[str, DatasetConfig] = Field(description=(
        "the corpora, by name (no __ in a name): how each is read, and its label maps"))
    embedder: EmbedderConfig = Field(default_factory=EmbedderConfig, description=(
        "the word representation under the levels"))
    levels: list[LevelConfig] = Field(min_length=1, description="the hierarchy's BiLSTM levels, bottom first")
    tasks: list[TaskConfig] = Field(min_length=1, description="the tasks, each a head on one level")
    chain: str | None = Field(default=None, description=(
        "task groups, bert-multitask-learning style: 'a&b|c' trains a and b on one batch of the same documents, "
        "c on its own; each name is a task or a namespace <dataset>__<task>. Default: every task is its own group"))
    sampler: SamplerConfig = Field(default_factory=SamplerConfig, description="which task group trains at each step")
    trainer: TrainerConfig = Field(default_factory=TrainerConfig, description=(
        "optimisation, schedule, device, checkpoints"))

    def task(self, name: str) -> TaskConfig:
        return next(task for task in self.tasks if task.name == name)

    def level_index(self, name: str) -> int:
        return [level.name for level in self.levels].index(name)

    def groups(self) -> list["TaskGroup"]:
        """What the sampler picks from at each step (``chain``, or every task on its own)."""
        if self.chain is None:
            return [TaskGroup(task.name, ((task.name, tuple(task.datasets)),)) for task in self.tasks]
        return parse_chain(self.chain, self.tasks)


class TaskGroup(NamedTuple):
    """One ``|``-separated part of a chain: its ``&``-joined members as (task, datasets it trains on)."""

    name: str
    members: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def joint(self) -> bool:
        return len(self.members) > 1


def parse_chain(chain: str, tasks: list[TaskConfig]) -> list[TaskGroup]:
    """``"conll03__ner&conll03__pos|gum__emd"`` -> groups; every problem is a ConfigError naming ``chain``."""
    by_name = {task.name: task for task in tasks}
    namespaces = {namespace(d, task.name): (task.name, d) for task in tasks for d in task.datasets}
    groups, seen = [], {}
    for group_text in chain.split("|"):
        members = []
        for item in group_text.split("&"):
            item = item.strip()
            if item in by_name:
                task, datasets = item, tuple(by_name[item].datasets)
            elif item in namespaces:
                task, dataset = namespaces[item]
                datasets = (dataset,)
            else:
                raise ConfigError(f"chain: {item!r} is neither a task nor a namespace; tasks are {sorted(by_name)}, "
                                  f"namespaces {sorted(namespaces)}")
            for dataset in datasets:
                if (task, dataset) in seen:
                    raise ConfigError(f"chain: {namespace(dataset, task)} is in the chain twice ({seen[task, dataset]!r} and {item!r})")
                seen[task, dataset] = item
            if any(task == other for other, _ in members):
                raise ConfigError(f"chain: {group_text!r} joins task {task!r} with itself")
            members.append((task, datasets))
        if len({datasets for _, datasets in members}) > 1:
            reads = ", ".join(f"{task} reads {list(datasets)}" for task, datasets in members)
            raise ConfigError(f"chain: '&' joins tasks that read the same documents, but in {group_text!r} {reads}")
        groups.append(TaskGroup(group_text.strip(), tuple(members)))
    missing = sorted(namespace(d, task.name) for task in tasks for d in task.datasets if (task.name, d) not in seen)
    if missing:
        raise ConfigError(f"chain: {', '.join(missing)} would never be trained; add them to the chain or remove the task")
    return groups


def check_references(config: Config) -> None:
    """Names that point at other sections: levels and datasets of tasks, duplicate names, the chain."""
    level_names = [level.name for level in config.levels]
    if len(set(level_names)) != len(level_names):
        raise ConfigError(f"levels: duplicate level names in {level_names}")
    task_names = [task.name for task in config.tasks]
    if len(set(task_names)) != len(task_names):
        raise ConfigError(f"tasks: duplicate task names in {task_names}")
    for index, task in enumerate(config.tasks):
        if task.level not in level_names:
            raise ConfigError(f"tasks[{index}].level: unknown level {task.level!r}; levels are {level_names}")
        for dataset in task.datasets:
            if dataset not in config.data:
                raise ConfigError(f"tasks[{index}].datasets: unknown dataset {dataset!r}; data has {list(config.data)}")
        if len(set(task.datasets)) != len(task.datasets):
            raise ConfigError(f"tasks[{index}].datasets: {task.datasets} names a dataset twice")
    for name in config.data:
        if NAMESPACE_SEPARATOR in name:
            raise ConfigError(f"data.{name}: dataset names may not contain {NAMESPACE_SEPARATOR!r} (it separates "
                              "dataset and task in namespaces)")
    config.groups()


def deep_merge(base: dict, overrides: dict) -> dict:
    """Merge ``overrides`` into a copy of ``base``; nested dicts merge, everything else replaces."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _expand(value: Any) -> Any:
    if isinstance(value, str):
        from hmtl.data.sample import SAMPLE_DIR

        values = {
            DATA_DIR_VARIABLE: os.environ.get(DATA_DIR_VARIABLE, "data"),
            PACKAGE_DATA_VARIABLE: str(SAMPLE_DIR),
        }
        return re.sub(r"\$\{(\w+)\}", lambda m: values.get(m.group(1), os.environ.get(m.group(1), m.group(0))), value)
    if isinstance(value, dict):
        return {k: _expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v) for v in value]
    return value


def _key_path(location: tuple) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def validate_config(raw: dict, source: str = "config", overrides: dict | None = None) -> Config:
    """The schema's checks (keys, types, ranges, cross-references, the chain), every problem reported with its dotted
    key and blamed on ``source`` or ``--overrides``. The checks that need the registries come after, in
    ``hmtl.checks.parse_config``: that is what the commands call."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a JSON object with data, levels and tasks")
    try:
        config = Config.model_validate(raw)
    except ValidationError as error:
        problems = []
        for e in error.errors():
            where = "--overrides" if overrides and _given(overrides, e["loc"]) else source
            message = e["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {_key_path(e['loc'])}: {message}" if e["loc"] else f"{where}: {message}")
        raise ConfigError("; ".join(problems)) from None
    try:
        check_references(config)
    except ConfigError as error:
        raise blame(error, source, overrides) from None
    return config


_LEADING_KEY = re.compile(r"([A-Za-z_][\w\-]*(?:\.[\w\-]+|\[[0-9]+\])*): ")


def blame(error: ConfigError, source: str, overrides: dict | None) -> ConfigError:
    """``error`` (whose message starts with its dotted key, ``chain: ...``) prefixed with where that key came from:
    ``--overrides`` when they set it, else the config file ``source``."""
    key = _LEADING_KEY.match(str(error))
    parts = re.findall(r"[^.\[\]]+", key.group(1)) if key else []
    location = tuple(int(part) if part.isdigit() else part for part in parts)
    where = "--overrides" if overrides and location and _given(overrides, location) else source
    return ConfigError(f"{where}: {error}")


def _given(overrides: dict, location: tuple) -> bool:
    """Does ``location`` (a pydantic error path) lead into a value that ``overrides`` set?"""
    value: Any = overrides
    for part in location:
        if not isinstance(value, dict):
            return True  # a list or a value that --overrides replaced whole
        if part not in value:
            return False
        value = value[part]
    return True


def read_config(path: str | Path, overrides: str | dict | None = None, expand: bool = True) -> tuple[dict, dict | None]:
    """A JSON config file with ``overrides`` (a JSON string or dict) merged on top and variables expanded, not yet
    validated: (the merged dict, the parsed overrides), for ``hmtl.checks.load_config``."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} not found")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None
    parsed = parse_overrides(overrides) if overrides else None
    if parsed:
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a JSON object with data, levels and tasks")
        raw = deep_merge(raw, parsed)
    return (_expand(raw) if expand else raw), parsed


def parse_overrides(overrides: str | dict) -> dict:
    """``--overrides``: a JSON object (as a string) or a dict."""
    if isinstance(overrides, dict):
        return overrides
    try:
        parsed = json.loads(overrides)
    except json.JSONDecodeError as error:
        raise ConfigError(f"--overrides is not valid JSON ({error.msg})") from None
    if not isinstance(parsed, dict):
        raise ConfigError('--overrides must be a JSON object, e.g. \'{"trainer": {"num_epochs": 1}}\'')
    return parsed
