"""BioMTL's transition-based NER text formats ("Effective Multi-Task Learning for Biomedical NER"), read and written.

One sentence per line, the sentence and its actions separated by `` ||| ``; a blank line or a ``-DOCSTART-`` line
separates documents.

``simple`` (:class:`TransitionReader`): tokens separated by single spaces, then token-level actions::

    Barack Obama was a president . ||| TRANSITION(PER) SHIFT SHIFT REDUCE(PER) OUT OUT OUT OUT

``TRANSITION(T)`` opens an entity of type T (consumes no token), ``SHIFT`` adds the next token to it, ``REDUCE(T)``
closes it, ``OUT`` consumes a token outside any entity. The actions consume exactly the line's tokens; entities
are flat.

``simple-char`` (:class:`CharTransitionReader`): raw sentence text, then only the entity actions with character
offsets into that text (``REDUCE``'s offset is end-exclusive)::

    Barack Obama was a president . ||| TRANSITION(PER,0) REDUCE(PER,12)

The text is tokenized with :mod:`hmtl.data.tokenization`; each line is one sentence of the ``Document`` (the
sentencizer does not split a line).

:func:`write_transition` writes ``Document``s in either format, keeping the outermost of nested or overlapping
entities.
"""
from __future__ import annotations

import gzip
import logging
import re
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from hmtl.data.document import Document, Span
from hmtl.data.readers.base import Reader, open_text
from hmtl.data.readers.char_spans import CharSpanReader
from hmtl.errors import DataFormatError, HmtlError
from hmtl.registry import READERS

logger = logging.getLogger(__name__)

SEPARATOR = " ||| "
DOCSTART = "-DOCSTART-"
MODES = ("simple", "simple-char")
_ENTITY_ACTION = re.compile(r"(TRANSITION|REDUCE)\((.*)\)")

# (line number, sentence text, actions text) for each sentence line of a document
_Line = tuple[int, str, str]


def _stem(path: Path) -> str:
    return path.name[: -len(".gz")] if path.name.endswith(".gz") else path.name


def _documents(path: Path) -> list[list[_Line]]:
    """The file's sentence lines grouped into documents (blank and ``-DOCSTART-`` lines separate them)."""
    groups: list[list[_Line]] = [[]]
    with open_text(path) as lines:
        for number, line in enumerate(lines, start=1):
            line = line.rstrip("\r\n")
            if not line.strip() or (SEPARATOR not in line and line.split()[0] == DOCSTART):
                if groups[-1]:
                    groups.append([])
                continue
            if line.endswith(SEPARATOR.rstrip()) and not line.endswith(SEPARATOR):  # "text |||": no actions
                text, actions = line[: -len(SEPARATOR.rstrip())], ""
            elif SEPARATOR in line:
                text, _, actions = line.rpartition(SEPARATOR)
            else:
                raise DataFormatError(path, number, f"expected 'sentence{SEPARATOR}actions', found no "
                                                    f"{SEPARATOR.strip()!r} separator: {line!r}")
            if not text.strip():
                raise DataFormatError(path, number, f"expected a sentence before {SEPARATOR.strip()!r}, found none")
            groups[-1].append((number, text, actions))
    return [group for group in groups if group]


def _entity_action(action: str) -> tuple[str, str] | None:
    """``("TRANSITION" | "REDUCE", argument)`` for an entity action, else ``None``."""
    match = _ENTITY_ACTION.fullmatch(action)
    return (match.group(1), match.group(2)) if match else None


@READERS.register("simple")
class TransitionReader(Reader):
    """BioMTL ``simple`` files: tokens and token-level transitions (see the module docstring).

    ``DataFormatError`` (file and line) for: a line without `` ||| ``, an empty token, an unknown action, actions
    that do not consume exactly the line's tokens, ``SHIFT`` outside or ``OUT`` inside an entity, ``REDUCE``
    without an open entity or of another type, ``TRANSITION`` while an entity is open, an empty entity, an entity
    left open at the end of the line. ``doc_id`` is ``<file>#<index>``."""

    def _read(self, path: Path) -> list[Document]:
        documents = []
        for index, lines in enumerate(_documents(path)):
            document = Document(doc_id=f"{_stem(path)}#{index}", sentences=[])
            for number, text, actions in lines:
                offset = document.num_tokens
                tokens, spans = self._sentence(path, number, text, actions)
                document.sentences.append(tokens)
                document.entities.extend(Span(s.start + offset, s.end + offset, s.label) for s in spans)
            documents.append(document)
        return documents

    @staticmethod
    def _sentence(path: Path, number: int, text: str, actions: str) -> tuple[list[str], list[Span]]:
        def fail(message: str):
            raise DataFormatError(path, number, message)

        tokens = text.split(" ")
        if "" in tokens:
            fail(f"empty token at position {tokens.index('')} (tokens are separated by single spaces): {text!r}")
        spans: list[Span] = []
        position = 0  # tokens consumed so far
        entity = _OpenEntity(fail)
        for index, action in enumerate(actions.split(), start=1):
            where = f"action {index} {action!r}"
            if action == "SHIFT":
                if entity.label is None:
                    fail(f"{where}: SHIFT outside an entity (use OUT, or TRANSITION(type) first)")
                position += 1
                continue
            if action == "OUT":
                if entity.label is not None:
                    fail(f"{where}: OUT inside the open entity {entity.label!r} (REDUCE({entity.label}) first)")
                position += 1
                continue
            parsed = _entity_action(action)
            if parsed is None:
                fail(f"{where}: unknown action (expected TRANSITION(type), SHIFT, REDUCE(type) or OUT)")
            kind, label = parsed
            if not label:
                fail(f"{where}: expected an entity type inside the parentheses")
            if kind == "TRANSITION":
                entity.transition(where, label, position)
                continue
            start = entity.reduce(where, label, f"REDUCE({label})")
            if position == start:
                fail(f"{where}: empty entity (no SHIFT between TRANSITION({label}) and REDUCE({label}))")
            spans.append(Span(start, position, label))
        if entity.label is not None:
            fail(f"the entity {entity.label!r} opened by TRANSITION({entity.label}) is not closed by the end of the line")
        if position != len(tokens):
            fail(f"the sentence has {len(tokens)} tokens, but the actions consume {position} (SHIFT and OUT each "
                 f"consume one)")
        return tokens, spans


class _OpenEntity:
    """The entity a TRANSITION opened (flat: at most one), checked the same way in both modes."""

    def __init__(self, fail):
        self.fail = fail
        self.label: str | None = None
        self.start = 0  # a token index (simple) or a character offset (simple-char)

    def transition(self, where: str, label: str, at: int) -> None:
        if self.label is not None:
            self.fail(f"{where}: TRANSITION while the entity {self.label!r} is still open (entities are flat)")
        self.label, self.start = label, at

    def reduce(self, where: str, label: str, action: str) -> int:
        """Close the open entity; returns where it started."""
        if self.label is None:
            self.fail(f"{where}: REDUCE without an open entity")
        if label != self.label:
            self.fail(f"{where}: {action} closes an entity of type {self.label!r}")
        self.label = None
        return self.start


@READERS.register("simple-char")
class CharTransitionReader(CharSpanReader):
    """BioMTL ``simple-char`` files: raw sentences with character-offset entity actions (see the module
    docstring). Options ``language`` and ``split_tokens`` as for every character-offset reader.

    ``DataFormatError`` (file and line) for: a line without `` ||| ``, an action other than ``TRANSITION(type,
    start)`` and ``REDUCE(type, end)``, a non-integer offset, an offset outside the line's text, ``REDUCE`` without
    an open entity or of another type, ``TRANSITION`` while an entity is open, ``start >= end``, an entity on
    whitespace only, entities that overlap, an entity left open at the end of the line, and an entity that cannot
    be placed on tokens. ``doc_id`` is ``<file>#<index>``."""

    def _read(self, path: Path) -> list[Document]:
        documents = []
        for index, lines in enumerate(_documents(path)):
            doc_id = f"{_stem(path)}#{index}"
            parsed = [(number, text, self._entities(path, number, text, actions)) for number, text, actions in lines]
            texts, entities, entity_lines, line_starts = [], [], [], []
            offset = 0
            for number, text, spans in parsed:
                line_starts.append(offset)
                texts.append(text)
                entities.extend((start + offset, end + offset, label) for start, end, label in spans)
                entity_lines.extend([number] * len(spans))
                offset += len(text) + 1
            document = self.tokenized_document(path, lines[0][0], doc_id, "\n".join(texts), entities, entity_lines)
            # Each line is one sentence: undo splits of spaCy's sentencizer inside a line.
            sentences: list[list[str]] = [[] for _ in texts]
            for token, (start, _) in zip(document.tokens, document.char_offsets):
                sentences[bisect_right(line_starts, start) - 1].append(token)
            document.sentences = [sentence for sentence in sentences if sentence]
            documents.append(document)
        return documents

    @staticmethod
    def _entities(path: Path, number: int, text: str, actions: str) -> list[tuple[int, int, str]]:
        def fail(message: str):
            raise DataFormatError(path, number, message)

        spans: list[tuple[int, int, str]] = []
        entity = _OpenEntity(fail)
        for index, action in enumerate(actions.split(), start=1):
            where = f"action {index} {action!r}"
            parsed = _entity_action(action)
            if parsed is None or "," not in parsed[1]:
                fail(f"{where}: unknown action (simple-char has only TRANSITION(type,start) and REDUCE(type,end))")
            kind, argument = parsed
            label, _, value = argument.rpartition(",")
            if not label:
                fail(f"{where}: expected an entity type before the offset")
            try:
                offset = int(value)
            except ValueError:
                fail(f"{where}: expected an integer character offset, found {value!r}")
            if not 0 <= offset <= len(text):
                fail(f"{where}: offset {offset} is outside the sentence text (length {len(text)})")
            if kind == "TRANSITION":
                entity.transition(where, label, offset)
                continue
            open_start = entity.reduce(where, label, f"REDUCE({label},...)")
            if open_start >= offset:
                fail(f"{where}: the entity starts at {open_start} and ends at {offset}; the start must be before the "
                     "end (end-exclusive)")
            if not text[open_start:offset].strip():
                fail(f"{where}: the entity [{open_start}, {offset}) covers only whitespace")
            for start, end, other in spans:
                if open_start < end and start < offset:
                    fail(f"{where}: the entity {label!r} [{open_start}, {offset}) {text[open_start:offset]!r} overlaps "
                         f"the entity {other!r} [{start}, {end}) {text[start:end]!r}")
            spans.append((open_start, offset, label))
        if entity.label is not None:
            fail(f"the entity {entity.label!r} opened at {entity.start} is not closed by the end of the line")
        return spans


# ---------------------------------------------------------------- writing


@dataclass
class TransitionCounts:
    """What :func:`write_transition` wrote, and how many nested or overlapping entities it had to drop."""

    documents: int = 0
    sentences: int = 0
    entities: int = 0
    dropped: int = 0


def flat_entities(spans: Iterable[Span]) -> tuple[list[Span], int]:
    """The outermost of nested or overlapping spans (longest first, then leftmost), sorted; and how many were
    dropped. Exact duplicates are kept once and not counted as dropped."""
    kept: list[Span] = []
    unique = list(dict.fromkeys(spans))
    for span in sorted(unique, key=lambda s: (s.start - s.end, s.start)):
        if all(span.end <= other.start or other.end <= span.start for other in kept):
            kept.append(span)
    return sorted(kept), len(unique) - len(kept)


def _check_label(document: Document, span: Span) -> str:
    label = span.label
    if not label or any(c.isspace() for c in label):
        raise HmtlError(f"document {document.doc_id!r}: entity {span} needs a type without whitespace for the "
                        "transition format")
    return label


def _simple_line(document: Document, tokens: list[str], spans: list[Span]) -> str:
    for token in tokens:
        if not token or any(c in token for c in " \r\n"):
            raise HmtlError(f"document {document.doc_id!r}: token {token!r} is empty or holds a space or line break, "
                            "which the space-separated simple format cannot hold (use simple-char)")
    actions: list[str] = []
    starts = {span.start: span for span in spans}
    position = 0
    while position < len(tokens):
        span = starts.get(position)
        if span is None:
            actions.append("OUT")
            position += 1
            continue
        label = _check_label(document, span)
        actions += [f"TRANSITION({label})"] + ["SHIFT"] * (span.end - span.start) + [f"REDUCE({label})"]
        position = span.end
    return " ".join(tokens) + SEPARATOR + " ".join(actions)


def _char_line(document: Document, first: int, tokens: list[str], spans: list[Span]) -> str:
    if document.text and len(document.char_offsets) == document.num_tokens:
        offsets = document.char_offsets[first : first + len(tokens)]
        base = offsets[0][0]
        text = document.text[base : offsets[-1][1]]
        offsets = [(start - base, end - base) for start, end in offsets]
    else:
        text, offsets, position = " ".join(tokens), [], 0
        for token in tokens:
            offsets.append((position, position + len(token)))
            position += len(token) + 1
    text = text.replace("\r", " ").replace("\n", " ")  # one line per sentence; offsets stay valid
    actions = []
    for span in spans:
        label = _check_label(document, span)
        actions += [f"TRANSITION({label},{offsets[span.start][0]})", f"REDUCE({label},{offsets[span.end - 1][1]})"]
    return text + SEPARATOR + " ".join(actions)


def write_transition(documents: Iterable[Document], path: str | Path, mode: str = "simple") -> TransitionCounts:
    """Write ``documents`` to ``path`` (gzipped for ``*.gz``) in BioMTL's ``simple`` or ``simple-char`` format,
    one sentence per line, a blank line between documents; empty sentences are left out. The formats hold flat
    entities only: of nested or overlapping ones the outermost are kept (:func:`flat_entities`) and the number
    dropped is logged and returned in the counts. ``HmtlError`` for an entity without a type (or with whitespace
    in it) and, in ``simple``, a token that is empty or holds a space or line break."""
    if mode not in MODES:
        raise HmtlError(f"unknown transition format {mode!r}; known: {', '.join(MODES)}")
    counts = TransitionCounts()
    blocks = []
    for document in documents:
        offsets = document.sentence_offsets()
        by_sentence: list[list[Span]] = [[] for _ in document.sentences]
        for span in document.entities:
            by_sentence[document.sentence_of(span.start, offsets)].append(span)
        lines = []
        for first, tokens, spans in zip(offsets, document.sentences, by_sentence):
            if not tokens:
                continue
            kept, dropped = flat_entities(spans)
            counts.dropped += dropped
            counts.entities += len(kept)
            local = [Span(s.start - first, s.end - first, s.label) for s in kept]
            lines.append(_simple_line(document, tokens, local) if mode == "simple"
                         else _char_line(document, first, tokens, local))
        if lines:
            blocks.append("".join(line + "\n" for line in lines))
            counts.documents += 1
            counts.sentences += len(lines)
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8", newline="\n") as handle:
        handle.write("\n".join(blocks))
    if counts.dropped:
        logger.info("%s: dropped %d nested or overlapping entities (the %s format holds flat entities only)",
                    path, counts.dropped, mode)
    return counts
