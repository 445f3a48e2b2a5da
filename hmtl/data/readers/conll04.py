"""CoNLL04 entities and relations in the unified JSON of "Two are better than one" / SpERT: one JSON array per
file, one sentence per item::

    {"tokens": [...], "entities": [[start, end_exclusive, type], ...],
     "relations": [[head_start, head_end, tail_start, tail_end, type], ...]}

The corpus has no documents, so each sentence becomes one ``Document`` (``doc_id`` ``<file stem>#<item>``).
"""
from __future__ import annotations

import json
from pathlib import Path

from hmtl.data.document import Document, Relation, Span
from hmtl.data.readers.base import Reader, open_text
from hmtl.errors import DataFormatError
from hmtl.registry import READERS


def iter_json_array(path: Path, text: str):
    """Yield (line number, index, item) for each item of a top-level JSON array, so errors can name a line
    even in a file that is one long line."""
    decoder = json.JSONDecoder()
    position = 0

    def skip() -> int:
        nonlocal position
        while position < len(text) and text[position] in " \t\r\n":
            position += 1
        return position

    def line_at(offset: int) -> int:
        return text.count("\n", 0, offset) + 1

    skip()
    if position >= len(text) or text[position] != "[":
        raise DataFormatError(path, line_at(position), "expected a JSON array of sentences ('[' first)")
    position += 1
    index = 0
    while True:
        skip()
        if position < len(text) and text[position] == "]":
            position += 1
            break
        if index:
            if position >= len(text) or text[position] != ",":
                raise DataFormatError(path, line_at(position), f"expected ',' or ']' after item {index - 1}")
            position += 1
            skip()
        start = position
        try:
            item, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            raise DataFormatError(path, error.lineno, f"invalid JSON in item {index}: {error.msg}") from None
        yield line_at(start), index, item
        index += 1
    if skip() != len(text):
        raise DataFormatError(path, line_at(position), "unexpected text after the JSON array")


@READERS.register("conll04")
class Conll04Reader(Reader):
    """One ``Document`` per sentence with typed ``entities`` and directed ``relations``; no clusters.

    Errors (``DataFormatError`` with the item's line and index): a missing ``tokens`` list, an entity that is
    empty or outside its sentence, a relation whose argument is not an annotated entity."""

    def _read(self, path: Path) -> list[Document]:
        with open_text(path) as handle:
            text = handle.read()
        documents = []
        for line, index, item in iter_json_array(path, text):
            documents.append(self._sentence(path, line, index, item, f"{path.name.split('.')[0]}#{index}"))
        return documents

    def _sentence(self, path: Path, line: int, index: int, item, doc_id: str) -> Document:
        def fail(message: str):
            raise DataFormatError(path, line, f"sentence {index}: {message}")

        if not isinstance(item, dict):
            fail(f"expected an object, found {type(item).__name__}")
        tokens = item.get("tokens")
        if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) for t in tokens):
            fail("'tokens' must be a non-empty list of strings")
        if any(not token.strip() for token in tokens):
            fail(f"'tokens' has an empty token at position {[t.strip() for t in tokens].index('')}")
        n = len(tokens)
        entities: dict[tuple[int, int], Span] = {}
        for entity in item.get("entities", []):
            if not (isinstance(entity, list) and len(entity) == 3 and all(isinstance(x, int) for x in entity[:2])
                    and isinstance(entity[2], str)):
                fail(f"entity {entity!r} is not [start, end_exclusive, type]")
            start, end, label = entity
            if not 0 <= start < end <= n:
                fail(f"entity {entity!r} is empty or outside the sentence of {n} tokens")
            if (start, end) in entities and entities[(start, end)].label != label:
                fail(f"span [{start}, {end}) is annotated twice, as {entities[(start, end)].label} and {label}")
            entities[(start, end)] = Span(start, end, label)
        relations = []
        for relation in item.get("relations", []):
            if not (isinstance(relation, list) and len(relation) == 5 and all(isinstance(x, int) for x in relation[:4])
                    and isinstance(relation[4], str)):
                fail(f"relation {relation!r} is not [head_start, head_end, tail_start, tail_end, type]")
            head, tail = tuple(relation[0:2]), tuple(relation[2:4])
            for argument in (head, tail):
                if argument not in entities:
                    fail(f"relation {relation!r} points at [{argument[0]}, {argument[1]}), which is not an entity")
            relations.append(Relation(entities[head], entities[tail], relation[4]))
        return Document(doc_id=doc_id, sentences=[tokens], entities=sorted(entities.values()), relations=relations)
