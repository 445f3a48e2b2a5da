"""Reads every configured corpus split into ``Document``s through the registered readers, holds out a validation
split where a corpus has none, and applies each dataset's label map."""
from __future__ import annotations

import functools
import logging
import math
from collections import Counter

import hmtl.data.readers  # noqa: F401  (registers the readers)
from hmtl.config import Config, DatasetConfig, SplitSource
from hmtl.data.document import Document, relabeled
from hmtl.errors import ConfigError
from hmtl.registry import READERS

logger = logging.getLogger(__name__)
SPLITS = ("train", "validation", "test")


def make_reader(name: str, reader: str, options: dict):
    reader_class = READERS.get(reader, f"data.{name}.reader")
    try:
        return reader_class(dataset=name, **options)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"data.{name}.reader_options: {error}") from None


def split_source(config: DatasetConfig, split: str) -> tuple[str, str, dict] | None:
    """(path, reader, reader options) of a split, or None when it is not configured."""
    source = getattr(config, split)
    if source is None:
        return None
    if isinstance(source, SplitSource):
        options = config.reader_options if source.reader_options is None else source.reader_options
        return source.path, source.reader or config.reader, options
    return source, config.reader, config.reader_options


def read_split(name: str, config: DatasetConfig, split: str, option: str | None = None) -> list[Document]:
    """One split's documents, label map applied (``validation_fraction`` is handled by ``load_datasets``);
    ``option`` names where the maps came from in an error (default ``data.<name>.``; evaluate.py's ``--``)."""
    source = split_source(config, split)
    if source is None:
        return []
    path, reader, options = source
    documents = make_reader(name, reader, options).read(path)
    if config.max_documents is not None:
        documents = documents[: config.max_documents]
    apply_label_map(documents, config, f"{name} {split} ({path})", f"data.{name}." if option is None else option)
    logger.info("%s %s: %d documents, %d sentences", name, split, len(documents), sum(len(d.sentences) for d in documents))
    return documents


def hold_out(name: str, documents: list[Document], fraction: float) -> tuple[list[Document], list[Document]]:
    """(train, validation): the last ``fraction`` of dataset ``name``'s documents (at least one) becomes validation."""
    if len(documents) < 2:
        raise ConfigError(f"data.{name}.validation_fraction: {name}'s training split has {len(documents)} document(s), "
                          "which cannot be split into train and validation; give it a validation split instead")
    held = max(1, math.floor(len(documents) * fraction))
    return documents[:-held], documents[-held:]


def load_datasets(config: Config, splits: tuple[str, ...] = SPLITS) -> dict[str, dict[str, list[Document]]]:
    """{dataset: {split: documents}} for every dataset a task uses; a task's dataset must have a train split."""
    used = sorted({dataset for task in config.tasks for dataset in task.datasets})
    loaded = {}
    for name in used:
        dataset = config.data[name]
        loaded[name] = {split: read_split(name, dataset, split) for split in splits}
        if dataset.validation_fraction is not None and "train" in splits:
            loaded[name]["train"], loaded[name]["validation"] = hold_out(name, loaded[name]["train"], dataset.validation_fraction)
            logger.info("%s: the last %d training documents are the validation split (validation_fraction %s)",
                        name, len(loaded[name]["validation"]), dataset.validation_fraction)
    if "train" in splits:
        for name, split_docs in loaded.items():
            if not split_docs["train"]:
                raise ConfigError(f"data.{name}.train: a dataset used by a task needs a training split")
    return loaded


def label_mapping(config: DatasetConfig, label: str, predicted: bool = False) -> str | None:
    """The entity type ``label`` becomes under the dataset's ``label_map`` then ``keep_labels`` (None: dropped).
    A ``predicted`` type (a head's, scored against gold read with these maps) that the map renames into is already
    mapped: a head trained on CoNLL predicts ``PER``, the target of GUM's ``{"person": "PER"}``."""
    predicted_target = predicted and label in config.label_map.values()
    mapped = label if predicted_target else config.label_map.get(label, label)
    if mapped is not None and config.keep_labels is not None and mapped not in config.keep_labels:
        return None
    return mapped


def apply_label_map(documents: list[Document], config: DatasetConfig, where: str, option: str = "") -> None:
    """Rename or drop entity types in place (relations whose argument was dropped go with it) and log the counts.
    A label map naming a type the corpus never uses is a warning listing the types it does use; ``keep_labels``
    that keep none of a corpus' types are an error naming ``option`` + ``keep_labels`` (scores over no gold would
    be zeros that mean nothing), and kept types the corpus lacks are a warning."""
    if not config.label_map and config.keep_labels is None:
        return
    found = Counter(span.label for document in documents for span in document.entities)
    absent = [label for label in config.label_map if label not in found]
    if absent:
        logger.warning("%s: label_map names %s, which never occur; the types are %s", where, absent, sorted(found))
    if config.keep_labels is not None:
        mapped = {config.label_map.get(label, label) for label in found} - {None}
        missing = [label for label in config.keep_labels if label not in mapped]
        if found and len(missing) == len(config.keep_labels):
            raise ConfigError(f"{option}keep_labels: none of {', '.join(config.keep_labels)} is an entity type of {where}"
                              f"{' after label_map' if config.label_map else ''}; its types are {', '.join(sorted(mapped)) or 'none'}")
        if missing:
            logger.warning("%s: keep_labels names %s, which never occur; the types are %s", where, missing, sorted(mapped))
    renamed, dropped = Counter(), Counter()
    for document in documents:
        for span in document.entities:
            label = label_mapping(config, span.label)
            if label is None:
                dropped[span.label] += 1
            elif label != span.label:
                renamed[f"{span.label}->{label}"] += 1
        document.entities, document.relations = relabeled(
            document.entities, document.relations, functools.partial(label_mapping, config))
    kept = Counter(span.label for document in documents for span in document.entities)
    logger.info("%s: label map renamed %s, dropped %s; types now %s", where, dict(renamed) or "nothing",
                dict(dropped) or "nothing", dict(sorted(kept.items())))
