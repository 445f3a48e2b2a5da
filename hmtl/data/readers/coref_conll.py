"""The coreference column and document markers of CoNLL-2012-style files, shared by the GUM, LitBank and
CoNLL-2012 readers (and ``mentions_to_clusters`` by PubTator's).

A document sits between ``#begin document ...`` and ``#end document`` (with or without a space after ``#``);
``document_blocks`` reads a file's documents, so every reader of these files reports a misplaced marker alike.

A cell is ``_`` (or ``-``, or empty) or a run of bracket pieces, optionally separated by ``|``:
``(ID`` opens a mention on this token, ``ID)`` closes the most recent open mention of ``ID``, ``(ID)`` is a
one-token mention. ``ID`` is a number (CoNLL-2012, OntoGUM, LitBank) or GUM's typed ``type-number[-link]``
(``(person-3-Lord_Byron)``), whose link never holds a bracket (GUM escapes them as ``%28``/``%29``).
Pieces are applied in the order they are written, so ``1)(1`` ends one mention and starts another.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from hmtl.data.readers.base import open_text
from hmtl.errors import DataFormatError

EMPTY_CELLS = {"", "_", "-"}
_BEGIN_DOCUMENT = re.compile(r"^#\s*begin document\s*(.*?)\s*$")
_END_DOCUMENT = re.compile(r"^#\s*end document")
_LEXEME = re.compile(r"[()|]|[^()|\s]+")
_TYPED = re.compile(r"^(?P<type>[A-Za-z_]+)-(?P<number>\d+)(?:-.*)?$")


def document_blocks(path: Path) -> Iterator[tuple[str, int, list[tuple[int, str]], int]]:
    """Each ``# begin document`` ... ``# end document`` block of the file, in order, as (what follows ``begin
    document``, that line's number, the ``(number, text)`` of the lines between, blank ones included and ``#``
    comment lines left out, the ``# end document`` line's number).

    ``DataFormatError`` (file and line) for a begin inside a block, an end without one, a line outside a block
    that is neither blank nor a comment, a block with no end."""
    block: tuple[str, int, list[tuple[int, str]]] | None = None
    with open_text(path) as lines:
        for number, line in enumerate(lines, start=1):
            line = line.rstrip("\n")
            begin = _BEGIN_DOCUMENT.match(line)
            if begin:
                if block is not None:
                    raise DataFormatError(path, number, f"'# begin document' inside the document begun at line "
                                                        f"{block[1]} (missing '# end document'?)")
                block = (begin[1], number, [])
            elif _END_DOCUMENT.match(line):
                if block is None:
                    raise DataFormatError(path, number, "'# end document' without '# begin document'")
                yield (*block, number)
                block = None
            elif line.startswith("#"):
                continue
            elif block is not None:
                block[2].append((number, line))
            elif line.strip():
                raise DataFormatError(path, number, "token line outside '# begin document' ... '# end document'")
    if block is not None:
        raise DataFormatError(path, block[1], "'# begin document' here has no '# end document'")


@dataclass(frozen=True)
class Mention:
    start: int  # token index in the document
    end: int  # exclusive
    entity: str  # cluster id as written (GUM: the number only)
    type: str | None  # GUM's entity type; None for numeric ids
    line: int  # line that opened the mention


def parse_label(label: str) -> tuple[str, str | None]:
    """``'person-3-Lord_Byron'`` -> ``('3', 'person')``; ``'12'`` -> ``('12', None)``. Anything else is invalid."""
    if label.isdigit():
        return label, None
    typed = _TYPED.match(label)
    if typed is None:
        raise ValueError(f"cluster id {label!r} is neither a number nor 'type-number[-link]'")
    return typed["number"], typed["type"]


def split_cell(cell: str) -> list[tuple[str, str]]:
    """The pieces of one cell as ``(kind, label)`` with kind ``open``/``close``/``single``, in written order.
    Raises ``ValueError`` for anything that is not a well-formed run of pieces."""
    if cell in EMPTY_CELLS:
        return []
    lexemes = _LEXEME.findall(cell)
    if "".join(lexemes) != cell:
        raise ValueError(f"malformed coreference brackets {cell!r} (whitespace inside)")

    def is_label(k: int) -> bool:
        return k < len(lexemes) and lexemes[k] not in "()|"

    pieces, i = [], 0
    while i < len(lexemes):
        lexeme = lexemes[i]
        if lexeme == "|":
            i += 1
        elif lexeme == "(" and is_label(i + 1):
            if i + 2 < len(lexemes) and lexemes[i + 2] == ")":
                pieces.append(("single", lexemes[i + 1]))
                i += 3
            else:
                pieces.append(("open", lexemes[i + 1]))
                i += 2
        elif is_label(i) and i + 1 < len(lexemes) and lexemes[i + 1] == ")":
            pieces.append(("close", lexeme))
            i += 2
        else:
            raise ValueError(f"malformed coreference brackets {cell!r}")
    return pieces


class BracketParser:
    """Feeds one document's cells token by token and collects its mentions; ``finish`` checks nothing is left
    open. Every error is a ``DataFormatError`` naming the file and the line."""

    def __init__(self, path: Path | str):
        self.path = path
        self.open: dict[str, list[tuple[int, str | None, int]]] = {}  # id -> stack of (start, type, line)
        self.mentions: list[Mention] = []

    def feed(self, token: int, cell: str, line: int) -> None:
        try:
            pieces = split_cell(cell.strip())
            parsed = [(kind, *parse_label(label)) for kind, label in pieces]
        except ValueError as error:
            raise DataFormatError(self.path, line, str(error)) from None
        for kind, entity, entity_type in parsed:
            if kind == "single":
                self.mentions.append(Mention(token, token + 1, entity, entity_type, line))
            elif kind == "open":
                self.open.setdefault(entity, []).append((token, entity_type, line))
            else:
                stack = self.open.get(entity)
                if not stack:
                    raise DataFormatError(self.path, line, f"cluster {entity} closes a mention that was never opened")
                start, opened_type, opened_line = stack.pop()
                self.mentions.append(Mention(start, token + 1, entity, opened_type, opened_line))

    def finish(self, end_line: int | None = None) -> list[Mention]:
        unclosed = [(line, entity) for entity, stack in self.open.items() for _, _, line in stack]
        if unclosed:
            line, entity = min(unclosed)
            where = f" before line {end_line}" if end_line is not None else ""
            raise DataFormatError(self.path, line, f"cluster {entity} opens a mention here that never closes{where}")
        return sorted(self.mentions, key=lambda m: (m.start, -m.end, m.line))


def mentions_to_clusters(mentions: list[Mention], keep_singletons: bool = True) -> tuple[list[list[tuple[int, int]]], int]:
    """Group mentions (in ``BracketParser.finish`` order) by cluster id into sorted lists of ``(start, end)``,
    clusters ordered by first mention, two clusters with the same first mention in the order they are written.

    Clusters are made a partition: the same bounds listed twice in one cluster count once, and bounds already in
    an earlier cluster (by first mention) are dropped from a later one, as the CoNLL reference scorer does with
    a repeated response mention. Singletons are dropped afterwards unless ``keep_singletons``.
    Returns the clusters and the number of mentions dropped for sitting in an earlier cluster."""
    by_id: dict[str, set[tuple[int, int]]] = {}
    for mention in mentions:
        by_id.setdefault(mention.entity, set()).add((mention.start, mention.end))
    claimed: set[tuple[int, int]] = set()
    clusters, repeated = [], 0
    for members in map(sorted, by_id.values()):  # ids in order of first mention; ties in written order
        kept = [bounds for bounds in members if bounds not in claimed]
        repeated += len(members) - len(kept)
        claimed.update(kept)
        if kept:
            clusters.append(kept)
    if not keep_singletons:
        clusters = [cluster for cluster in clusters if len(cluster) > 1]
    return clusters, repeated
