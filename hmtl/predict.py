"""Prediction on raw text or pre-tokenized sentences with a trained model: the Python API behind predict.py.

    from hmtl.predict import Predictor
    predictor = Predictor.from_serialization_dir("out")
    predictor.predict("Ada Lovelace lived in London. She wrote the first program.")
"""
from __future__ import annotations

from pathlib import Path

import torch

from hmtl.config import split_namespace
from hmtl.data.document import Document
from hmtl.data.tokenization import tokenize
from hmtl.errors import HmtlError
from hmtl.model import HierarchicalModel, load_model
from hmtl.training.batching import make_batches


# A document longer than this is refused rather than tokenized: a 5 MB line is almost always a file whose documents
# were not put one per line, and whole-document tasks (coreference) grow quadratically with length.
MAX_DOCUMENT_CHARS = 200_000


class Predictor:
    def __init__(self, model: HierarchicalModel, batch_size: int = 32, max_document_chars: int = MAX_DOCUMENT_CHARS):
        self.model = model.eval()
        self.batch_size = batch_size
        self.max_document_chars = max_document_chars

    def check_length(self, text: str, where: str = "the document") -> None:
        if len(text) > self.max_document_chars:
            raise HmtlError(f"{where} has {len(text):,} characters, more than the limit of {self.max_document_chars:,}; "
                            "split it into several documents (one per line for predict.py) or raise max_document_chars")

    @classmethod
    def from_serialization_dir(cls, directory: str | Path, **kwargs) -> "Predictor":
        return cls(load_model(directory), **kwargs)

    def heads(self, namespaces: list[str] | None) -> list[tuple[str, str, str]]:
        """(output key, task, dataset) for each head to run: each task's first namespace by default; an unknown
        namespace is an error that lists the model's."""
        if namespaces is None:
            return [(name, name, task.datasets[0]) for name, task in self.model.tasks.items()]
        known = self.model.namespaces()
        unknown = [ns for ns in namespaces if ns not in known]
        if unknown:
            raise HmtlError(f"unknown namespace(s) {', '.join(unknown)}; the model has {', '.join(known)}")
        heads = []
        for ns in namespaces:
            dataset, task = split_namespace(ns)
            heads.append((ns, task, dataset))
        return heads

    @torch.no_grad()
    def predict(self, text: str | list[list[str]], doc_id: str = "input", namespaces: list[str] | None = None) -> dict:
        """Every task's output for one document: ``{"sentences": [...], "<task>": {...}}``, token offsets over
        the whole document, end-exclusive. Each task uses the head of its first dataset unless ``namespaces``
        (e.g. ``["ncbi__ner", "conll03__ner"]``) names the heads to run; the output is then keyed by namespace."""
        heads = self.heads(namespaces)
        if isinstance(text, str):
            self.check_length(text)
        sentences = tokenize(text).sentences if isinstance(text, str) else [list(s) for s in text]
        document = Document(doc_id=doc_id, sentences=sentences)
        offsets = document.sentence_offsets()
        output: dict = {"doc_id": doc_id, "sentences": sentences}
        shared: dict[tuple, dict] = {}  # one features dict per unit: a frozen transformer's cached states serve every task
        for key, name, dataset in heads:
            task = self.model.task(name)
            instances = task.instances([document], dataset)
            for instance in instances:
                instance.features = shared.setdefault(instance.source, instance.features)
            self.model.prepare(instances)
            predictions = {}
            for batch in make_batches(instances, task.batch_size(self.batch_size)):
                predictions.update(zip(map(id, batch), self.model.decode(batch, name)))
            merged: dict[str, list] = {}
            for instance in instances:  # document order
                offset = offsets[instance.source[1]] if len(instance.source) > 1 else 0
                for field, values in task.export(predictions[id(instance)], offset).items():
                    merged.setdefault(field, []).extend(values)
            output[key] = merged
        return output
