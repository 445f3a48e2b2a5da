"""Prediction on raw text or pre-tokenized documents with a trained model: the Python API behind predict.py and
the HTTP server.

    from hmtl.predict import Predictor
    predictor = Predictor.from_serialization_dir("out")
    predictor.predict("Ada Lovelace lived in London. She wrote the first program.")
    predictor.predict(["One document.", "Another one."], namespaces=["conll03__ner"])
    predictor.predict("One document.", namespaces="all", keep_labels=["PER"])

Each head's output is keyed by its namespace (``conll03__ner``), whichever heads were asked for. Every span comes
back with its surface text, its character offsets into the input and its token offsets:
``{"text": "Ada Lovelace", "label": "PER", "start_char": 0, "end_char": 12, "start": 0, "end": 2}``.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Callable

import torch

from hmtl.config import namespace, split_namespace
from hmtl.data.document import Document
from hmtl.data.tokenization import pipeline, tokenize_many
from hmtl.errors import HmtlError
from hmtl.model import HierarchicalModel, load_model
from hmtl.tasks.base import Instance
from hmtl.training.batching import make_batches

# A document longer than this is refused rather than tokenized: a 5 MB line is almost always a file whose documents
# were not put one per line, and whole-document tasks (coreference) grow quadratically with length.
MAX_DOCUMENT_CHARS = 200_000

Text = str | list[list[str]] | Document  # raw text, a pre-tokenized document (sentences of tokens), or a Document
Namespaces = list[str] | str | None  # the heads to run: a list of namespaces, "all", or None (each task's first)


def check_limits(prefix: str = "", **limits) -> None:
    """The one-line error for a limit that is not a positive whole number (None: the default), shared by the API,
    predict.py and the server (``prefix="--"``): 0 or -1 would refuse every document with a confusing message."""
    for name, value in limits.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise HmtlError(f"{prefix}{name}: expected a positive number, got {value!r}")


class Predictor:
    def __init__(self, model: HierarchicalModel, batch_size: int = 32, max_document_chars: int = MAX_DOCUMENT_CHARS,
                 language: str = "en"):
        """``batch_size``: sentences per batch (whole-document tasks use their own); ``language``: the spaCy
        tokenizer that splits raw text (the raw-text readers' default, ``"en"``)."""
        check_limits(batch_size=batch_size, max_document_chars=max_document_chars)
        self.model = model.eval()
        self.batch_size = batch_size
        self.max_document_chars = max_document_chars
        try:
            pipeline(language)
        except ValueError as error:
            raise HmtlError(str(error)) from None
        self.language = language

    @classmethod
    def from_serialization_dir(cls, directory: str | Path, device: str = "auto", **kwargs) -> "Predictor":
        """The best model of a training run on ``device`` (``auto``: a GPU when there is one)."""
        return cls(load_model(directory, device=device), **kwargs)

    def check_text(self, text, where: str = "the text") -> None:
        """The one-line error for input that cannot be predicted on: not a string or a pre-tokenized document,
        empty, binary, too long."""
        if isinstance(text, (list, tuple)):
            text = _check_tokens(text, where)
        if not isinstance(text, str):
            raise HmtlError(f"{where} is a {type(text).__name__}, not a string")
        if not text.strip():
            raise HmtlError(f"{where} is empty")
        if "\x00" in text:
            raise HmtlError(f"{where} holds NUL bytes: binary data, not text")
        if len(text) > self.max_document_chars:
            raise HmtlError(f"{where} has {len(text):,} characters, more than the limit of {self.max_document_chars:,}; "
                            "split it into several documents (one per line for predict.py) or raise max_document_chars")

    def heads(self, namespaces: Namespaces) -> list[tuple[str, str, str]]:
        """(output key = namespace, task, dataset) for each head to run: each task's first dataset's by default,
        every head for ``"all"``; an unknown namespace is an error that lists the model's."""
        if namespaces is None or namespaces == "all":
            return [(namespace(dataset, name), name, dataset) for name, task in self.model.tasks.items()
                    for dataset in (task.datasets if namespaces == "all" else task.datasets[:1])]
        if isinstance(namespaces, str):
            raise HmtlError(f"namespaces: expected a list of namespaces or \"all\", got {namespaces!r}")
        self.model.check_namespaces(namespaces)
        if not namespaces:
            raise HmtlError(f"no namespace given; the model has {', '.join(self.model.namespaces())}")
        return [(ns, split_namespace(ns)[1], split_namespace(ns)[0]) for ns in dict.fromkeys(namespaces)]

    def predict(self, texts: Text | list[Text], namespaces: Namespaces = None, doc_ids: list[str] | None = None,
                keep_labels: list[str] | None = None) -> dict | list[dict]:
        """Every head's output for one text (a dict) or for a list of texts (a list of dicts, in order); a list
        of lists of strings is one pre-tokenized document (its sentences), not several texts. See ``predict_many``."""
        single = not isinstance(texts, (list, tuple)) or _is_tokenized(texts)
        if single:
            return self._predict([texts], namespaces, doc_ids, keep_labels, "the text")[0]
        return self.predict_many(texts, namespaces, doc_ids, keep_labels)

    def predict_many(self, texts: list[Text], namespaces: Namespaces = None, doc_ids: list[str] | None = None,
                     keep_labels: list[str] | None = None) -> list[dict]:
        """Every head's output for each of ``texts`` (raw text, a pre-tokenized document or a ``Document``), in
        order: ``doc_id``, ``text``, ``sentences`` and one entry per head, keyed by its namespace. ``namespaces``:
        the heads to run (e.g. ``["ncbi__ner", "conll03__ner"]``, ``"all"``; default: each task's first
        dataset's). ``keep_labels``: only entities of these types (relations between them) are kept. Sentences of
        all the texts are batched together by length. The server calls this: its texts are always a list."""
        return self._predict(list(texts), namespaces, doc_ids, keep_labels, "text {}")

    def _predict(self, texts: list[Text], namespaces: Namespaces, doc_ids: list[str] | None,
                 keep_labels: list[str] | None, where: str) -> list[dict]:
        heads = self.heads(namespaces)  # an unknown namespace fails before any work
        keep = self.label_filter(keep_labels, heads)
        for index, item in enumerate(texts):
            if not isinstance(item, Document):
                self.check_text(item, where.format(index))
        ids = [str(i) for i in range(len(texts))] if doc_ids is None else [str(d) for d in doc_ids]
        if len(ids) != len(texts):
            raise HmtlError(f"{len(ids)} doc_ids for {len(texts)} texts")
        return self.predict_documents(self.documents(texts), heads, ids, keep)

    def label_filter(self, keep_labels: list[str] | None,
                     heads: list[tuple[str, str, str]]) -> Callable[[str], str | None] | None:
        """The type mapping of ``keep_labels`` for ``Task.relabel`` (None: keep everything); a list naming no type
        the heads predict is an error listing theirs."""
        if keep_labels is None:
            return None
        if isinstance(keep_labels, str) or not all(isinstance(label, str) for label in keep_labels):
            raise HmtlError(f"keep_labels: expected a list of entity types, got {keep_labels!r}")
        types = {key: self.model.task(name).entity_types(key) for key, name, _ in heads}
        if not any(label in (known or ()) for label in keep_labels for known in types.values()):
            known = "; ".join(f"{key}: {', '.join(found)}" for key, found in types.items() if found) or "none"
            raise HmtlError(f"keep_labels: {keep_labels} names no type the chosen heads predict ({known})")
        kept = set(keep_labels)
        return lambda label: label if label in kept else None

    def documents(self, items: list[Text]) -> list[Document]:
        """Documents with text and character offsets; internal ids are positions, unique within the call. A
        pre-tokenized document's text is its tokens joined by spaces, its sentences by line breaks."""
        raw = [i for i, item in enumerate(items) if isinstance(item, str)]
        tokenized = iter(tokenize_many([items[i] for i in raw], self.language))
        documents = []
        for index, item in enumerate(items):
            if isinstance(item, str):
                found = next(tokenized)
                sentences, text = found.sentences, found.text
                offsets = [offset for sentence in found.offsets for offset in sentence]
            else:
                sentences = [list(s) for s in (item.sentences if isinstance(item, Document) else item)]
                text, offsets = (item.text, item.char_offsets) if isinstance(item, Document) and item.char_offsets else _joined(sentences)
            documents.append(Document(doc_id=str(index), sentences=sentences, text=text, char_offsets=list(offsets)))
        return documents

    @torch.no_grad()
    def predict_documents(self, documents: list[Document], heads: list[tuple[str, str, str]], doc_ids: list[str],
                          keep: Callable[[str], str | None] | None = None) -> list[dict]:
        """``keep``: a type mapping the predictions go through before export (``Task.relabel``)."""
        wanted = {namespace(dataset, name) for _, name, dataset in heads}
        datasets = {dataset for _, _, dataset in heads}
        instances = self.model.task_instances({dataset: documents for dataset in datasets}, wanted)
        by_namespace: dict[str, list[Instance]] = defaultdict(list)
        for found in instances.values():
            for instance in found:
                by_namespace[instance.namespace].append(instance)
        predictions = self._decode(heads, by_namespace)
        outputs = [{"doc_id": doc_id, "text": d.text, "sentences": d.sentences} for d, doc_id in zip(documents, doc_ids)]
        sentence_offsets = [d.sentence_offsets() for d in documents]
        for key, name, dataset in heads:
            task = self.model.task(name)
            merged: list[dict[str, list]] = [{} for _ in documents]
            for instance in by_namespace[namespace(dataset, name)]:  # document order
                index = int(instance.source[0])
                offset = sentence_offsets[index][instance.source[1]] if len(instance.source) > 1 else 0
                prediction = predictions[key][id(instance)]
                if keep is not None:
                    prediction = task.relabel(prediction, keep)
                for field, values in task.export(prediction, offset).items():
                    merged[index].setdefault(field, []).extend(with_characters(values, documents[index]))
            for output, fields in zip(outputs, merged):
                output[key] = fields
        return outputs

    def _decode(self, heads: list[tuple[str, str, str]], by_namespace: dict[str, list[Instance]]) -> dict[str, dict]:
        """{head key: {id(instance): prediction}}. Heads over the same units (every sentence-level head, every
        document-level head) are decoded together, one pass through the levels for all of them; and a sentence
        the levels read once is not read again by the other group (``HierarchicalModel.encode``'s ``shared``)."""
        groups: dict[tuple, list[tuple[str, str, list[Instance]]]] = defaultdict(list)
        for key, name, dataset in heads:
            found = by_namespace[namespace(dataset, name)]
            groups[tuple(i.source for i in found)].append((key, name, found))
        predictions: dict[str, dict] = {key: {} for key, _, _ in heads}
        shared: dict = {}  # level states by sentence: the deepest group encodes, the others read (model.encode)
        deepest_first = sorted(groups.values(), key=lambda members: -max(self.model.depth(n) for _, n, _ in members))
        with self.model.inference_precision():
            for members in deepest_first:
                (_, _, first), batch_size = members[0], min(self.model.task(n).batch_size(self.batch_size) for _, n, _ in members)
                position = {id(instance): p for p, instance in enumerate(first)}
                for batch in make_batches(first, batch_size, length=self._length):
                    rows = [position[id(instance)] for instance in batch]
                    decoded = self.model.decode_heads(
                        self.model.collate([(name, [found[r] for r in rows]) for _, name, found in members]), shared)
                    for (key, _, found), values in zip(members, decoded):
                        predictions[key].update(zip((id(found[r]) for r in rows), values))
        return predictions

    def _length(self, instance: Instance) -> int:
        """What a batch costs per item: subwords when there is a transformer (sorting by words would leave a
        third of its positions padding on CoNLL-2003), else words."""
        return len(instance.features.get("subwords", instance.tokens))

    def info(self) -> dict:
        """What the model predicts: its tasks (type, level, datasets, namespaces; the first is the default head),
        each namespace's task and labels, and the input limits."""
        configs = {config.name: config for config in self.model.config.tasks}
        tasks = [{"name": name, "type": configs[name].type, "level": configs[name].level, "datasets": task.datasets,
                  "namespaces": task.namespaces, "default_namespace": task.namespaces[0]}
                 for name, task in self.model.tasks.items()]
        namespaces = {ns: {"task": name, "labels": _labels(task.labels[ns])}
                      for name, task in self.model.tasks.items() for ns in task.namespaces}
        return {"tasks": tasks, "namespaces": namespaces, "language": self.language, "device": str(self.model.device),
                "limits": {"max_document_chars": self.max_document_chars, "batch_size": self.batch_size}}


def _check_tokens(sentences: list | tuple, where: str) -> str:
    """The joined text of a pre-tokenized document (sentences, each a list of token strings), for the text
    checks; a document of another shape, an empty sentence or token is a one-line error."""
    if not sentences:
        raise HmtlError(f"{where} is empty")
    for index, sentence in enumerate(sentences):
        if not isinstance(sentence, (list, tuple)) or not all(isinstance(token, str) for token in sentence):
            raise HmtlError(f"{where} is a list but not a pre-tokenized document: its item {index} is not a list of "
                            'token strings; expected sentences of tokens, e.g. [["Ada", "lived", "."]]')
        if not sentence:
            raise HmtlError(f"{where}: sentence {index} is empty (no tokens)")
        if not all(token.strip() for token in sentence):
            raise HmtlError(f"{where}: sentence {index} has an empty or blank token")
    return _joined(sentences)[0]


def _labels(labels) -> list | dict:
    """A head's labels as ``/info`` shows them: a list, or for a head with several label sets (relations: entity
    types and relation labels; events: trigger types and roles) each set by name."""
    return {name: list(values) for name, values in labels.items()} if isinstance(labels, dict) else list(labels)


def _is_tokenized(item) -> bool:
    return isinstance(item, (list, tuple)) and bool(item) and all(
        isinstance(s, (list, tuple)) and all(isinstance(t, str) for t in s) for s in item)


def _joined(sentences: list[list[str]]) -> tuple[str, list[tuple[int, int]]]:
    """Text and token offsets of pre-tokenized sentences: tokens joined by spaces, sentences by line breaks."""
    offsets, position = [], 0
    for sentence in sentences:
        for token in sentence:
            offsets.append((position, position + len(token)))
            position += len(token) + 1
    return "\n".join(" ".join(s) for s in sentences), offsets


def with_characters(values: list, document: Document) -> list:
    """Exported spans (any nesting of lists and ``{"start", "end", ...}`` dicts) with their surface text and
    character offsets into ``document.text`` added."""
    def convert(value):
        if isinstance(value, list):
            return [convert(v) for v in value]
        if isinstance(value, dict) and "start" in value and "end" in value:
            start_char, end_char = document.char_offsets[value["start"]][0], document.char_offsets[value["end"] - 1][1]
            span = {"text": document.text[start_char:end_char]}
            if "label" in value:
                span["label"] = value["label"]
            return {**span, "start_char": start_char, "end_char": end_char, "start": value["start"], "end": value["end"]}
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        return value

    return [convert(v) for v in values]
