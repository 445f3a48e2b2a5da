"""CoNLL-2012 ``*_conll`` files (OntoNotes 5.0 as the CoNLL-2012 shared task gives it): named entities, coreference,
speakers.

A file holds documents between ``#begin document (NAME); part NUMBER`` and ``#end document``; sentences are
separated by blank lines; a token line has whitespace-separated columns:

    0 document name, 1 part number, 2 word index in the sentence, 3 word, 4 POS, 5 parse bit, 6 predicate lemma,
    7 predicate frameset, 8 word sense, 9 speaker, 10 named entity, 11.. predicate arguments, last coreference

The predicate-argument columns are one per predicate of the sentence, so a sentence's lines all have its first
line's width, 12 at the least. Other lines starting with ``#`` are comments, skipped.

Each (document, part) is one ``Document``:

- ``doc_id``: ``NAME_NUMBER`` as written (``bc/cctv/00/cctv_0001_000``), so the scorer's
  ``#begin document (NAME); part NUMBER`` is ``doc_id.rpartition("_")``;
- ``entities``: the named-entity column, ``(PERSON*`` opening a span, ``*)`` closing it, ``(GPE)`` or ``(GPE*)``
  one token, ``*`` nothing new; spans stay inside their sentence and do not nest;
- ``clusters``: the coreference column (brackets of ``hmtl.data.readers.coref_conll``: ``(12``, ``12)``,
  ``(5)``, ``(3|(7``, ``-``), document-level, as written (OntoNotes has no singletons; a mention whose bounds are
  in two chains is kept in the first, counted in ``reader.repeated_mentions`` and logged);
- ``token_tags["speaker"]``: the speaker column, one per token as written (``-`` where there is none);
- ``attributes["genre"]``: the first component of NAME (``bc``; ``""`` when NAME has no ``/``).

``DataFormatError`` (file and line) for: a ``#begin document`` that is not ``(NAME); part NUMBER`` or comes inside
a document, an ``#end document`` without one, a document with no tokens or no ``#end document``, a token line
outside a document, with fewer than 12 columns or another width than its sentence's first line, naming another
document or part, or with its word index out of sequence, an unbalanced or nested named-entity bracket, a
malformed, unopened or unclosed coreference bracket.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import NoReturn

from hmtl.data.document import Document, Span
from hmtl.data.readers.base import Reader
from hmtl.data.readers.coref_conll import BracketParser, document_blocks, mentions_to_clusters
from hmtl.errors import DataFormatError
from hmtl.registry import READERS

logger = logging.getLogger(__name__)
MIN_COLUMNS = 12  # 11 fixed columns and the coreference one; predicate-argument columns sit between
SPEAKER, NAMED_ENTITY = 9, 10
_NAME_AND_PART = re.compile(r"\((?P<name>.+)\);\s*part\s+(?P<part>\d+)")
_ENTITY_CELL = re.compile(r"(?:\((?P<label>[^()*\s]+))?(?P<inside>\*)?(?P<close>\))?")


class _Part:
    """One (document, part) while it is being read."""

    def __init__(self, path: Path, name: str, part: str, line: int):
        self.path, self.name, self.part, self.line = path, name, part, line
        self.sentences: list[list[str]] = []
        self.speakers: list[list[str]] = []
        self.entities: list[Span] = []
        self.coreference = BracketParser(path)
        self.words: list[str] = []  # the sentence being read, and its speakers
        self.sentence_speakers: list[str] = []
        self.width = self.first_line = 0
        self.open_entity: tuple[str, int, int] | None = None  # label, first token, line
        self.tokens = 0  # in the finished sentences

    def add(self, columns: list[str], line: int) -> None:
        if len(columns) < MIN_COLUMNS:
            self.fail(line, f"expected at least {MIN_COLUMNS} whitespace-separated columns (document, part, word "
                            "index, word, POS, parse, lemma, frameset, sense, speaker, entity, [arguments,] "
                            f"coreference), found {len(columns)}")
        if self.words and len(columns) != self.width:
            self.fail(line, f"expected {self.width} columns like line {self.first_line} (its sentence's first), "
                            f"found {len(columns)}")
        if columns[0] != self.name or not columns[1].isdigit() or int(columns[1]) != int(self.part):
            self.fail(line, f"a token of document {columns[0]!r} part {columns[1]!r} inside document {self.name!r} "
                            f"part {self.part!r} (missing '# end document'?)")
        if columns[2] != str(len(self.words)):
            self.fail(line, f"word index {columns[2]!r} out of sequence (expected {len(self.words)}; missing blank "
                            "line?)")
        if not self.words:
            self.width, self.first_line = len(columns), line
        token = self.tokens + len(self.words)
        self._entity_cell(columns[NAMED_ENTITY], token, line)
        self.coreference.feed(token, columns[-1], line)
        self.words.append(columns[3])
        self.sentence_speakers.append(columns[SPEAKER])

    def _entity_cell(self, cell: str, token: int, line: int) -> None:
        match = _ENTITY_CELL.fullmatch(cell)
        if match is None or not (match["inside"] or (match["label"] and match["close"])):
            self.fail(line, f"malformed named-entity cell {cell!r}: expected '(TYPE*', '*', '*)', '(TYPE)' or "
                            "'(TYPE*)'")
        if match["label"]:
            if self.open_entity is not None:
                label, _, opened = self.open_entity
                self.fail(line, f"named entity {match['label']} opens inside {label} (opened at line {opened}); "
                                "named entities do not nest")
            self.open_entity = (match["label"], token, line)
        if match["close"]:
            if self.open_entity is None:
                self.fail(line, f"named-entity cell {cell!r} closes an entity that was never opened")
            label, start, _ = self.open_entity
            self.entities.append(Span(start, token + 1, label))
            self.open_entity = None

    def end_sentence(self, line: int) -> None:
        """Close the sentence read so far, if any; ``line`` is the blank or ``#end document`` line after it."""
        if self.open_entity is not None:
            label, _, opened = self.open_entity
            self.fail(opened, f"named entity {label} opens here and never closes before the end of its sentence "
                              f"(line {line})")
        if self.words:
            self.sentences.append(self.words)
            self.speakers.append(self.sentence_speakers)
            self.tokens += len(self.words)
            self.words, self.sentence_speakers = [], []

    def fail(self, line: int, message: str) -> NoReturn:
        raise DataFormatError(self.path, line, message)


@READERS.register("conll2012")
class Conll2012Reader(Reader):
    """CoNLL-2012 ``*_conll`` files (see the module docstring); no options."""

    def __init__(self, dataset: str = ""):
        super().__init__(dataset)
        self.repeated_mentions = 0

    def _read(self, path: Path) -> list[Document]:
        self.repeated_mentions = 0
        documents = []
        for rest, begin_line, lines, end_line in document_blocks(path):
            name = _NAME_AND_PART.fullmatch(rest)
            if name is None:
                raise DataFormatError(path, begin_line, f"expected '#begin document (NAME); part NUMBER', found "
                                                        f"{rest!r} after 'begin document'")
            part = _Part(path, name["name"], name["part"], begin_line)
            for number, line in lines:
                if line.strip():
                    part.add(line.split(), number)
                else:
                    part.end_sentence(number)
            documents.append(self._document(part, end_line))
        if self.repeated_mentions:
            logger.info("%s: %d mentions are in two clusters: kept in the first only", path, self.repeated_mentions)
        return documents

    def _document(self, part: _Part, end_line: int) -> Document:
        part.end_sentence(end_line)
        if not part.sentences:
            part.fail(part.line, f"document {part.name!r} part {part.part!r} has no tokens")
        clusters, repeated = mentions_to_clusters(part.coreference.finish(end_line), keep_singletons=True)
        self.repeated_mentions += repeated
        genre = part.name.partition("/")[0] if "/" in part.name else ""
        return Document(doc_id=f"{part.name}_{part.part}", sentences=part.sentences, entities=part.entities,
                        clusters=[[Span(start, end) for start, end in cluster] for cluster in clusters],
                        token_tags={"speaker": part.speakers}, attributes={"genre": genre})
