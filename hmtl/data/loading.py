"""Reads every configured corpus split into ``Document``s through the registered readers."""
from __future__ import annotations

import logging

import hmtl.data.readers  # noqa: F401  (registers the readers)
from hmtl.config import Config, DatasetConfig
from hmtl.data.document import Document
from hmtl.errors import ConfigError
from hmtl.registry import READERS

logger = logging.getLogger(__name__)
SPLITS = ("train", "validation", "test")


def make_reader(name: str, config: DatasetConfig):
    reader_class = READERS.get(config.reader, f"data.{name}.reader")
    try:
        return reader_class(dataset=name, **config.reader_options)
    except TypeError as error:
        raise ConfigError(f"data.{name}.reader_options: {error}") from None


def read_split(name: str, config: DatasetConfig, split: str) -> list[Document]:
    path = getattr(config, split)
    if path is None:
        return []
    documents = make_reader(name, config).read(path)
    if config.max_documents is not None:
        documents = documents[: config.max_documents]
    logger.info("%s %s: %d documents, %d sentences", name, split, len(documents), sum(len(d.sentences) for d in documents))
    return documents


def load_datasets(config: Config, splits: tuple[str, ...] = SPLITS) -> dict[str, dict[str, list[Document]]]:
    """{dataset: {split: documents}} for every dataset a task uses; a task's dataset must have a train split."""
    used = {dataset for task in config.tasks for dataset in task.datasets}
    loaded = {name: {split: read_split(name, config.data[name], split) for split in splits} for name in sorted(used)}
    if "train" in splits:
        for name, split_docs in loaded.items():
            if not split_docs["train"]:
                raise ConfigError(f"data.{name}.train: a dataset used by a task needs a training split")
    return loaded
