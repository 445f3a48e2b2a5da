"""Config checks that need the registries (task types, readers, samplers, metric names), and the config loading that
runs them: ``load_config`` / ``parse_config`` here are what every command (train, evaluate, predict, serve, probe)
loads a config with, so a typo in a task option, a reader option, the sampler or the validation metric stops the run
before any data is read. ``hmtl.config`` is the schema alone: it imports none of the registries."""
from __future__ import annotations

import inspect
from pathlib import Path

import hmtl.data.readers  # noqa: F401  (registers the readers)
import hmtl.tasks  # noqa: F401  (registers the task types)
from hmtl.config import Config, SplitSource, blame, config_namespaces, namespace, read_config, validate_config
from hmtl.data.loading import SPLITS, split_source
from hmtl.errors import ConfigError
from hmtl.registry import READERS, TASKS, include
from hmtl.training.samplers import make_sampler  # registers the samplers too


def reader_options(reader_class) -> list[str]:
    """The keyword options a reader takes (its constructor's parameters besides ``dataset``)."""
    parameters = inspect.signature(reader_class.__init__).parameters
    return [name for name in parameters if name not in ("self", "dataset")]


def check_reader(reader: str, options: dict, key: str) -> None:
    known = reader_options(READERS.get(reader, f"{key}.reader"))
    for option in options:
        if option not in known:
            raise ConfigError(f"{key}.reader_options.{option}: unknown option of reader {reader!r}; "
                              f"it takes {', '.join(known) or 'no options'}")


def metric_names(config: Config) -> set[str]:
    """Every metric name the validation metric may use: MEAN__all, MEAN__<task>_<m>, <namespace>_<m>."""
    names = {"MEAN__all"}
    for task in config.tasks:
        task_class = TASKS.get(task.type, "")
        for metric in task_class.main_metrics(task_class.parse_options(task)):
            names.add(f"MEAN__{task.name}_{metric}")
            names.update(f"{namespace(dataset, task.name)}_{metric}" for dataset in task.datasets)
    return names


def check_config(config: Config) -> None:
    for name, dataset in config.data.items():
        check_reader(dataset.reader, dataset.reader_options, f"data.{name}")
        for split in SPLITS:  # a split with a reader of its own
            if isinstance(getattr(dataset, split), SplitSource):
                _, reader, options = split_source(dataset, split)
                check_reader(reader, options, f"data.{name}.{split}")
    units = {}
    for index, task in enumerate(config.tasks):
        task_class = TASKS.get(task.type, f"tasks[{index}].type")
        units[task.name] = task_class.instance_unit(task_class.parse_options(task))
    for group in config.groups():
        if group.joint and len({units[task] for task, _ in group.members}) > 1:
            found = ", ".join(f"{task} reads {units[task]}s" for task, _ in group.members)
            raise ConfigError(f"chain: '&' joins tasks that read the same units, but in {group.name!r} {found}")
    make_sampler(config.sampler)  # sampler.type and the sampler's own options
    spec = config.trainer.validation_metric
    if not spec or spec[0] not in "+-":
        raise ConfigError(f"trainer.validation_metric: {spec!r} must start with + (higher is better) or -")
    known = metric_names(config)
    if spec[1:] not in known and not any(spec[1:].startswith(f"{ns}_") for ns in config_namespaces(config.tasks)):
        raise ConfigError(f"trainer.validation_metric: {spec[1:]!r} is not a metric of this config; "
                          f"use one of {', '.join(sorted(known))}")


def parse_config(raw: dict, source: str = "config", overrides: dict | None = None) -> Config:
    """Validate and check a config dict: the schema (``hmtl.config.validate_config``), then its ``include`` modules
    and every check that needs the registries; each problem names its dotted key and ``source``, or ``--overrides``
    when they set that key."""
    config = validate_config(raw, source, overrides)
    try:
        include(config.include)
        check_config(config)
    except ConfigError as error:
        raise blame(error, source, overrides) from None
    return config


def load_config(path: str | Path, overrides: str | dict | None = None, expand: bool = True) -> Config:
    """Read a JSON config, merge ``overrides`` (a JSON string or dict) on top, expand variables, validate and check."""
    raw, parsed = read_config(path, overrides, expand)
    return parse_config(raw, str(path), parsed)


def check_tracking(config: Config) -> None:
    """``trainer.mlflow`` needs the mlflow package. Checked when a training starts, before any data is read, and not
    at every config load: a model trained with tracking still loads (predict, serve) where mlflow is missing."""
    if config.trainer.mlflow is None:
        return
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise ConfigError("trainer.mlflow: MLflow is not installed: pip install 'hmtl[tracking]' (or mlflow), "
                          "or remove the key") from None
