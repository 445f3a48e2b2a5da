"""EEQA JSON lines (Du & Cardie 2020; PHEE's ``*.eeqa.json``): DyGIE items for one sentence a line.

``{"sentence": [tokens], "s_start": n, "ner": [...], "relation": [...], "event": [...], "id": ...}``: ``ner``,
``relation`` and ``event`` hold the ``dygie`` reader's items of that one sentence, their token offsets inclusive and
counted from the start of the sentence's document, whose first token ``s_start`` is (0 in PHEE). Each line becomes
a one-sentence document, ``doc_id`` its ``id``.

Tokens that are only white space (five PHEE sentences hold a ``" "`` or ``"\\n"`` token, left over from its
tokenizer) carry nothing a model can read: they are dropped, each span's offsets moved onto the tokens kept, and the
count logged per file.
"""
from __future__ import annotations

import logging
from pathlib import Path

from hmtl.data.document import Document
from hmtl.data.readers.conll import DygieReader, _is_int
from hmtl.errors import DataFormatError
from hmtl.registry import READERS

logger = logging.getLogger(__name__)
FIELDS = {"ner": "ner", "relation": "relations", "event": "events"}  # EEQA key -> DyGIE key


def offset_maps(sentence: list[str], first: int) -> tuple[dict[int, int], dict[int, int]]:
    """Where a start and an end offset of the document (the sentence's first token is ``first``) go in the sentence
    without its blank tokens: a start to the first kept token at or after it, an end to the last at or before it."""
    starts, ends, kept = {}, {}, 0
    for index, token in enumerate(sentence):
        starts[first + index] = kept
        kept += bool(token.strip())
        ends[first + index] = kept - 1
    return starts, ends


def mapped(value, starts: dict[int, int], ends: dict[int, int], first: int):
    """An item (``[start, end, label]``, ``[s1, e1, s2, e2, label]``, ``[token, type]``) or a list of items with its
    offsets mapped; an offset outside the sentence is only moved by ``first``, for the ``dygie`` reader to refuse."""
    if not isinstance(value, list):
        return value
    if not any(_is_int(v) for v in value):
        return [mapped(v, starts, ends, first) for v in value]
    offsets = iter([starts, ends] * len(value))
    return [next(offsets).get(v, v - first) if _is_int(v) else v for v in value]


@READERS.register("eeqa")
class EeqaReader(DygieReader):
    """Errors are the ``dygie`` reader's, at the file and line (``sentence 0`` is the line's sentence), plus a
    record without a ``sentence`` list or with an ``s_start`` that is no integer."""

    def __init__(self, dataset: str = ""):
        super().__init__(dataset)
        self.blank_tokens = 0

    def read(self, path: str | Path) -> list[Document]:
        self.blank_tokens = 0
        documents = super().read(path)
        if self.blank_tokens:
            logger.info("%s: dropped %d tokens that were only white space", path, self.blank_tokens)
        return documents

    def _document(self, path: Path, number: int, record) -> Document:
        if not isinstance(record, dict) or not isinstance(record.get("sentence"), list):
            raise DataFormatError(path, number, "expected an object with a 'sentence' key (a list of tokens)")
        first, sentence = record.get("s_start", 0), record["sentence"]
        if not _is_int(first):
            raise DataFormatError(path, number, f"expected 's_start' to be an integer, found {first!r}")
        if all(isinstance(token, str) for token in sentence):
            starts, ends = offset_maps(sentence, first)
            self.blank_tokens += sum(not token.strip() for token in sentence)
            sentence = [token for token in sentence if token.strip()]
        else:
            starts = ends = {}  # the dygie reader refuses the sentence
        converted = {"sentences": [sentence], "doc_key": record.get("id")}
        converted.update({key: [mapped(record[name], starts, ends, first)]
                          for name, key in FIELDS.items() if name in record})
        return super()._document(path, number, converted)
