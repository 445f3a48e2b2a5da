"""Raw text with character-offset entity spans, tokenized here (``hmtl.data.tokenization``).

``jsonl_spans`` (:class:`JsonlSpanReader`): one document per line, ``{"doc_id", "text", "entities": [[start_char,
end_char_exclusive, type, surface], ...]}`` (the JNLPBA standoff packed as JSON lines; ``surface`` is optional and,
when given, must equal ``text[start:end]``).
"""
from __future__ import annotations

import json
from pathlib import Path

from hmtl.data.document import Document
from hmtl.data.readers.base import Reader, open_text
from hmtl.data.tokenization import AlignmentCounts, AlignmentError, align, document_from_text, pipeline, tokenize
from hmtl.errors import DataFormatError
from hmtl.registry import READERS


class CharSpanReader(Reader):
    """Base of the readers whose annotations are character offsets into raw text (options ``language`` and
    ``split_tokens``)."""

    option_help = {
        "language": "the spaCy tokenizer's language",
        "split_tokens": ("split a token where an annotation boundary falls inside it (the count is logged); false "
                         "makes such an annotation an error naming file and line"),
    }

    def __init__(self, dataset: str = "", language: str = "en", split_tokens: bool = True):
        super().__init__(dataset)
        pipeline(language)  # an unknown language is an option error now, not a failure mid-corpus
        self.language = language
        self.split_tokens = split_tokens
        self.counts = AlignmentCounts()

    def tokenized_document(self, path: Path, line: int | None, doc_id: str, text: str,
                           entities: list[tuple[int, int, str]], entity_lines: list[int] | None = None) -> Document:
        """``document_from_text`` with alignment problems reported at ``path:line``, or, with ``entity_lines``
        (each entity's line, for formats with an annotation a line), at the line of the entity that fails."""
        try:
            document, counts = document_from_text(doc_id, text, entities, self.language, self.split_tokens)
        except AlignmentError as error:
            if entity_lines:
                tokenized = tokenize(text, self.language)
                for (start, end, _), entity_line in zip(entities, entity_lines):
                    try:
                        align(tokenized, [(start, end)], self.split_tokens)
                    except AlignmentError as own:
                        raise DataFormatError(path, entity_line, f"document {doc_id!r}: {own}") from None
            raise DataFormatError(path, line, f"document {doc_id!r}: {error}") from None
        self.counts.add(counts)
        return document

    def read(self, path: str | Path) -> list[Document]:
        self.counts = AlignmentCounts()
        documents = super().read(path)
        self.counts.log(path)
        return documents


def _is_offset(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@READERS.register("jsonl_spans")
class JsonlSpanReader(CharSpanReader):
    """JSON lines of raw text with ``[start, end, type, surface]`` entities (see the module docstring).

    ``DataFormatError`` (file and line) for: invalid JSON, a record without a string ``text``, an entity that is
    not ``[start, end, type]`` or ``[start, end, type, surface]``, an offset outside the text, a surface that
    differs from the text at its offsets, an entity on whitespace only. Blank lines are skipped; ``doc_id``
    defaults to ``<file>#<line>``."""

    def _read(self, path: Path) -> list[Document]:
        documents = []
        with open_text(path) as lines:
            for number, line in enumerate(lines, start=1):
                if line.strip():
                    documents.append(self._document(path, number, line))
        return documents

    def _document(self, path: Path, number: int, line: str) -> Document:
        def fail(message: str):
            raise DataFormatError(path, number, message)

        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            fail(f"expected one JSON object per line: {error.msg} (column {error.colno})")
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            fail('expected an object with a "text" string')
        text = record["text"]
        doc_id = str(record.get("doc_id") or f"{path.name}#{number}")
        entities = []
        for item in record.get("entities") or []:
            if not (isinstance(item, list) and len(item) in (3, 4) and _is_offset(item[0]) and _is_offset(item[1])
                    and isinstance(item[2], str) and item[2]):
                fail(f"expected entities as [start, end, type] or [start, end, type, surface], found {item!r}")
            start, end, label = item[:3]
            if not 0 <= start < end <= len(text):
                fail(f"entity {item!r} is outside the text (length {len(text)}) or empty")
            if len(item) == 4 and text[start:end] != item[3]:
                fail(f"entity {item!r}: the text at [{start}, {end}) is {text[start:end]!r}, not {item[3]!r}")
            entities.append((start, end, label))
        return self.tokenized_document(path, number, doc_id, text, entities)
