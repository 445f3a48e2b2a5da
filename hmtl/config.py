"""The experiment configuration: a JSON file validated on load, so a typo stops the run before any work.

Every section is a pydantic model with ``extra="forbid"``: an unknown key is an error that names it, and so is a
missing required one. ``${HMTL_DATA_DIR}`` in any string expands to the data folder (default ``data``).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hmtl.errors import ConfigError

DATA_DIR_VARIABLE = "HMTL_DATA_DIR"
PACKAGE_DATA_VARIABLE = "HMTL_PACKAGE_DATA"  # expands to the bundled sample corpus folder


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class DatasetConfig(Section):
    """One corpus: which reader parses it and where its splits live."""

    reader: str
    reader_options: dict[str, Any] = Field(default_factory=dict)
    train: str | None = None
    validation: str | None = None
    test: str | None = None
    max_documents: int | None = Field(default=None, description="keep only the first N documents of each split")


class GloveConfig(Section):
    dim: Literal[50] = 50


class CharCnnConfig(Section):
    embedding_dim: int = 30
    num_filters: int = 50
    kernel_size: int = 3


MAX_CONTEXT_SUBWORDS = 100  # sentence instances keep this many words of context on each side


class TransformerConfig(Section):
    path: str = Field(default="minilm", description='a local model folder, or "minilm" for the bundled MiniLM')
    fine_tune: bool = False
    scalar_mix: bool = True
    pooling: Literal["first", "mean"] = "mean"
    context: int = Field(default=0, ge=0, le=MAX_CONTEXT_SUBWORDS, description=(
        "subwords of the neighbouring sentences given to the transformer on each side of a sentence (document "
        f"context, as FLERT), at most {MAX_CONTEXT_SUBWORDS}; 0: the sentence alone"))


class EmbedderConfig(Section):
    glove: GloveConfig | None = Field(default_factory=GloveConfig)
    char_cnn: CharCnnConfig | None = Field(default_factory=CharCnnConfig)
    transformer: TransformerConfig | None = None
    dropout: float = 0.5


class LevelConfig(Section):
    """One level of the hierarchy: a BiLSTM reading [base embedding ; level below] (shortcut connection)."""

    name: str
    hidden_size: int = 200
    num_layers: int = 1
    dropout: float = 0.5


class TaskConfig(Section):
    name: str
    type: str
    level: str
    datasets: list[str]
    options: dict[str, Any] = Field(default_factory=dict, description="validated by the task type itself")


class SamplerConfig(Section):
    type: Literal["uniform", "proportional", "temperature"] = "proportional"
    temperature: float = 2.0


class TrainerConfig(Section):
    num_epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 1e-3
    transformer_learning_rate: float = 5e-5
    weight_decay: float = 0.0
    warmup_ratio: float = 0.0
    decay: Literal["linear", "none"] = "none"
    grad_clipping: float = 5.0
    accumulation_steps: int = 1
    patience: int = 5
    validation_metric: str = "+MEAN__f1"
    bf16: bool = False
    num_threads: int | None = None
    max_steps_per_epoch: int | None = None


class Config(Section):
    seed: int = 13
    data: dict[str, DatasetConfig]
    embedder: EmbedderConfig = Field(default_factory=EmbedderConfig)
    levels: list[LevelConfig]
    tasks: list[TaskConfig]
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)

    def model_post_init(self, _context: Any) -> None:
        level_names = [level.name for level in self.levels]
        if len(set(level_names)) != len(level_names):
            raise ConfigError(f"levels: duplicate level names in {level_names}")
        task_names = [task.name for task in self.tasks]
        if len(set(task_names)) != len(task_names):
            raise ConfigError(f"tasks: duplicate task names in {task_names}")
        for index, task in enumerate(self.tasks):
            if task.level not in level_names:
                raise ConfigError(f"tasks[{index}].level: unknown level {task.level!r}; levels are {level_names}")
            for dataset in task.datasets:
                if dataset not in self.data:
                    raise ConfigError(f"tasks[{index}].datasets: unknown dataset {dataset!r}; data has {list(self.data)}")

    def task(self, name: str) -> TaskConfig:
        return next(task for task in self.tasks if task.name == name)

    def level_index(self, name: str) -> int:
        return [level.name for level in self.levels].index(name)


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


def parse_config(raw: dict, source: str = "config") -> Config:
    """Validate a config dict; every problem is reported with its dotted key."""
    try:
        return Config.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(f"{_key_path(e['loc'])}: {e['msg']}" for e in error.errors())
        raise ConfigError(f"{source}: {problems}") from None


def load_config(path: str | Path, overrides: str | dict | None = None, expand: bool = True) -> Config:
    """Read a JSON config, merge ``overrides`` (a JSON string or dict) on top, expand variables, validate."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} not found")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None
    if overrides:
        raw = deep_merge(raw, parse_overrides(overrides))
    return parse_config(_expand(raw) if expand else raw, str(path))


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
