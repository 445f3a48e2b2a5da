"""Standoff corpora: raw text with annotations that point into it by character offsets, tokenized here.

``brat`` (:class:`BratReader`): the BRAT rapid annotation tool's standoff format, one ``<doc>.txt`` with its
``<doc>.ann`` per document. ``pubtator`` (:class:`PubTatorReader`): the PubTator format of the BC5CDR and
NCBI-disease distributions, many documents in one file.

Both share the ``CharSpanReader`` options (``language``, ``split_tokens``) and report an annotation that cannot be
placed on tokens at the line that holds it.
"""
from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path

from hmtl.data.document import Document, Event, Relation, Span
from hmtl.data.readers.base import open_text
from hmtl.data.readers.char_spans import CharSpanReader
from hmtl.data.readers.coref_conll import Mention, mentions_to_clusters
from hmtl.errors import ConfigError, DataFormatError
from hmtl.registry import READERS

logger = logging.getLogger(__name__)
_INTEGER = re.compile(r"-?\d+")


def _read_raw_text(path: Path) -> str:
    """The text exactly as stored: no newline translation, since offsets count a ``\\r`` as a character."""
    with open_text(path, exact=True) as handle:
        return handle.read()


# ---------------------------------------------------------------- BRAT

DISCONTINUOUS_MODES = ("join", "skip", "error")
IGNORED_KINDS = ("A", "M", "N", "#", "*")


@READERS.register("brat")
class BratReader(CharSpanReader):
    """BRAT standoff: ``<doc>.txt`` (the raw text) and ``<doc>.ann`` (annotations pointing into it).

    ``read(path)`` takes a folder (every ``*.txt`` in it, sorted by name, each with its sibling ``.ann``; a
    ``.txt`` without one is a document without annotations) or one ``.txt`` or ``.ann`` file (read with its
    pair). ``doc_id`` is the file stem. The text is read as stored (a ``\\r`` counts as a character, as in
    brat's offsets); a document whose text is empty or whitespace only is skipped (and logged).

    ``.ann`` lines:

    - ``T1<TAB>Type START END[;START END...]<TAB>surface``: an entity (every text-bound annotation, event
      triggers included: drop their types with a ``label_map`` if an entity head should not learn them). The
      same offsets and type written twice make one entity.
    - ``R1<TAB>Label Arg1:T1 Arg2:T2``: a relation from ``Arg1`` (head) to ``Arg2`` (tail).
    - ``E1<TAB>Type:T3 Role:T4 Role2:E2 ...``: an event (``document.events``) of type ``Type`` triggered by
      ``T3``, with its arguments' roles as written (``Theme2`` stays ``Theme2``). An argument that is another
      event stands for that event's trigger span (the events are not nested). The sentences an event spans are
      joined into one, as for a span across sentences.
    - ``A``/``M``, ``N``, ``#`` and ``*`` lines are skipped; how many is logged per file.

    ``document.attributes["brat_ids"]``: ``{T id: index into document.entities}``.

    Options: ``language`` and ``split_tokens`` (``CharSpanReader``), ``discontinuous`` (``option_help``).

    ``DataFormatError`` (the ``.ann`` file and line) for: a malformed ``T``, ``R`` or ``E`` line, an offset that is
    not an integer, a fragment outside the text or empty, a span on whitespace only, a surface that differs from the
    text at its offsets (for a discontinuous span: from its fragments joined by one space, compared fragment by
    fragment), a ``T`` or ``E`` id written twice, an ``R`` argument or ``E`` trigger that is no ``T`` id of the
    file, an ``E`` argument that is neither a ``T`` nor an ``E`` id of the file, a line of an unknown kind, a
    discontinuous span with ``discontinuous: "error"``, a span boundary inside a token with ``split_tokens:
    false``. A missing file, a folder holding an ``.ann`` without its ``.txt``, or a path that is
    neither a folder nor a ``.txt``/``.ann`` file is an error naming the path.
    """

    option_help = {**CharSpanReader.option_help, "discontinuous": (
        'a span of several fragments (";" in its offsets): "join" makes one span from the first fragment\'s start to '
        'the last one\'s end, "skip" leaves it out (and the relations and events it is part of), "error" stops; how '
        'many there were is logged per corpus')}

    def __init__(self, dataset: str = "", language: str = "en", split_tokens: bool = True,
                 discontinuous: str = "join"):
        super().__init__(dataset, language, split_tokens)
        if discontinuous not in DISCONTINUOUS_MODES:
            raise ConfigError(f"reader option discontinuous must be one of {', '.join(DISCONTINUOUS_MODES)}, "
                              f"not {discontinuous!r}")
        self.discontinuous = discontinuous
        self.discontinuous_spans = self.dropped_relations = self.dropped_event_parts = 0

    def read(self, path: str | Path) -> list[Document]:
        self.discontinuous_spans = self.dropped_relations = self.dropped_event_parts = 0
        documents = super().read(path)
        if self.discontinuous_spans:
            what = {"join": "each joined into one span from its first start to its last end",
                    "skip": f"skipped, and so were the {self.dropped_relations} relations and the "
                            f"{self.dropped_event_parts} events (by their trigger) or event arguments using them"
                    }[self.discontinuous]
            logger.info("%s: %d discontinuous spans (discontinuous=%r): %s", path, self.discontinuous_spans,
                        self.discontinuous, what)
        return documents

    def _read(self, path: Path) -> list[Document]:
        documents = []
        empty = []
        for text_path, ann_path in self._pairs(path):
            document = self._document(text_path.stem, _read_raw_text(text_path), ann_path)
            if document is None:
                empty.append(text_path.name)
            else:
                documents.append(document)
        if empty:
            logger.info("%s: skipped %d documents with no text: %s", path, len(empty), ", ".join(empty))
        return documents

    @staticmethod
    def _pairs(path: Path) -> list[tuple[Path, Path]]:
        if path.is_dir():
            texts = sorted(path.glob("*.txt"))
            for ann_path in sorted(path.glob("*.ann")):
                if not ann_path.with_suffix(".txt").exists():
                    raise DataFormatError(ann_path, None, f"no text file {ann_path.with_suffix('.txt').name} "
                                                          "for these annotations")
            return [(text_path, text_path.with_suffix(".ann")) for text_path in texts]
        if not path.exists():
            raise DataFormatError(path, None, "file not found")
        if path.suffix == ".txt":
            return [(path, path.with_suffix(".ann"))]
        if path.suffix == ".ann":
            if not path.with_suffix(".txt").exists():
                raise DataFormatError(path, None, f"no text file {path.with_suffix('.txt').name} "
                                                  "for these annotations")
            return [(path.with_suffix(".txt"), path)]
        raise DataFormatError(path, None, "expected a folder of .txt/.ann files, or one .txt or .ann file")

    def _document(self, doc_id: str, text: str, ann_path: Path) -> Document | None:
        # T id -> (start, end, type, line), or None for a skipped discontinuous span
        spans: dict[str, tuple[int, int, str, int] | None] = {}
        relations: list[tuple[str, str, str, int]] = []  # label, Arg1 id, Arg2 id, line
        events: dict[str, tuple[str, str, list[tuple[str, str]], int]] = {}  # E id -> type, trigger, arguments, line
        skipped: Counter = Counter()
        if ann_path.exists():
            with open_text(ann_path) as lines:
                for number, line in enumerate(lines, start=1):
                    line = line.rstrip("\r\n")
                    if not line.strip():
                        continue
                    kind = line[0]
                    if kind == "T":
                        identifier, span = self._text_bound(ann_path, number, line, text)
                        if identifier in spans:
                            raise DataFormatError(ann_path, number, f"annotation id {identifier!r} is used twice")
                        spans[identifier] = span
                    elif kind == "R":
                        relations.append(self._relation(ann_path, number, line))
                    elif kind == "E":
                        identifier, event = self._event_line(ann_path, number, line)
                        if identifier in events:
                            raise DataFormatError(ann_path, number, f"annotation id {identifier!r} is used twice")
                        events[identifier] = event
                    elif kind in IGNORED_KINDS:
                        skipped[kind] += 1
                    else:
                        raise DataFormatError(ann_path, number, f"unknown annotation line {line!r}: expected T "
                                                                "(entity), R (relation), E, A, M, N, # or * lines")
        if skipped:
            logger.info("%s: skipped %d annotation lines this reader does not use (%s)", ann_path,
                        sum(skipped.values()), ", ".join(f"{kind} {n}" for kind, n in sorted(skipped.items())))
        for label, head, tail, number in relations:
            for role, identifier in (("Arg1", head), ("Arg2", tail)):
                if identifier not in spans:
                    raise DataFormatError(ann_path, number, f"relation {label!r}: {role} {identifier!r} is not the "
                                                            "id of a T (text-bound) annotation of this file")
        events = self._resolve_events(ann_path, events, spans)
        if not text.strip():  # and so no annotations either: each would have been outside the text or blank
            return None
        index: dict[tuple[int, int, str], int] = {}
        entity_lines: list[int] = []
        brat_ids: dict[str, int] = {}
        for identifier, span in spans.items():
            if span is not None:
                start, end, label, number = span
                if (start, end, label) not in index:
                    index[(start, end, label)] = len(index)
                    entity_lines.append(number)
                brat_ids[identifier] = index[(start, end, label)]
        first_line = min(entity_lines) if entity_lines else None
        extents = [(min(spans[i][0] for i in ids), max(spans[i][1] for i in ids), "")
                   for _, trigger, arguments, _ in events for ids in [[trigger] + [i for _, i in arguments]]]
        document = self.tokenized_document(ann_path, first_line, doc_id, text, list(index) + extents,
                                           entity_lines + [line for *_, line in events])
        del document.entities[len(index):]  # the extents only kept each event's sentences together
        for label, trigger, arguments, _ in events:
            span = document.entities[brat_ids[trigger]]
            document.events.append(Event(Span(span.start, span.end, label), tuple(
                Span(document.entities[brat_ids[i]].start, document.entities[brat_ids[i]].end, role)
                for role, i in arguments)))
        for label, head, tail, _ in relations:
            if head in brat_ids and tail in brat_ids:  # else an argument is a skipped discontinuous span
                relation = Relation(document.entities[brat_ids[head]], document.entities[brat_ids[tail]], label)
                if relation not in document.relations:
                    document.relations.append(relation)
            else:
                self.dropped_relations += 1
        document.attributes["brat_ids"] = brat_ids
        return document

    def _text_bound(self, path: Path, number: int, line: str,
                    text: str) -> tuple[str, tuple[int, int, str, int] | None]:
        def fail(message: str):
            raise DataFormatError(path, number, message)

        fields = line.split("\t", 2)
        label, _, offsets = fields[1].partition(" ") if len(fields) == 3 else ("", "", "")
        if not fields[0][1:] or not label or not offsets.strip():
            fail(f"expected 'T<id><TAB>Type START END[;START END...]<TAB>surface', found {line!r}")
        identifier, surface = fields[0], fields[2]
        fragments = []
        for fragment in offsets.split(";"):
            bounds = fragment.split()
            if len(bounds) != 2:
                fail(f"{identifier}: expected offsets 'START END[;START END...]', found {offsets!r}")
            if not all(_INTEGER.fullmatch(bound) for bound in bounds):
                fail(f"{identifier}: offsets must be integers, found {fragment.strip()!r}")
            start, end = int(bounds[0]), int(bounds[1])
            if not 0 <= start < end <= len(text):
                fail(f"{identifier}: span [{start}, {end}) is outside the text (length {len(text)}) or empty")
            fragments.append((start, end))
        self._check_surface(identifier, fragments, surface, text, fail)
        start, end = min(s for s, _ in fragments), max(e for _, e in fragments)
        if len(fragments) > 1:
            self.discontinuous_spans += 1
            if self.discontinuous == "error":
                fail(f"{identifier}: discontinuous span {offsets!r} (reader option discontinuous is 'error'; "
                     "'join' or 'skip' would read it)")
            if self.discontinuous == "skip":
                return identifier, None
        if not text[start:end].strip():
            fail(f"{identifier}: span [{start}, {end}) covers only whitespace")
        return identifier, (start, end, label, number)

    @staticmethod
    def _check_surface(identifier: str, fragments: list[tuple[int, int]], surface: str, text: str, fail) -> None:
        """brat writes a discontinuous span's surface as its fragments' texts joined by one space."""
        if len(fragments) == 1:
            start, end = fragments[0]
            if text[start:end] != surface:
                fail(f"{identifier}: the text at [{start}, {end}) is {text[start:end]!r}, not {surface!r}")
            return
        position = 0
        for number, (start, end) in enumerate(fragments, start=1):
            if number > 1:
                if surface[position : position + 1] != " ":
                    fail(f"{identifier}: surface {surface!r} should have a space before fragment {number}")
                position += 1
            expected = text[start:end]
            found = surface[position : position + len(expected)]
            if found != expected:
                fail(f"{identifier}: fragment {number} [{start}, {end}) is {expected!r} in the text, but "
                     f"{found!r} in the surface {surface!r}")
            position += len(expected)
        if position != len(surface):
            fail(f"{identifier}: surface {surface!r} is longer than its fragments' texts joined by spaces")

    @staticmethod
    def _event_line(path: Path, number: int, line: str) -> tuple[str, tuple[str, str, list[tuple[str, str]], int]]:
        """``E1<TAB>Type:T3 Role:T4 ...`` -> (``E1``, (type, trigger id, [(role, id)], line))."""
        fields = line.split("\t")
        parts = [part.split(":", 1) for part in fields[1].split()] if len(fields) >= 2 else []
        malformed = any(len(p) != 2 or not all(p) for p in parts) or any(f.strip() for f in fields[2:])
        if not fields[0][1:] or not parts or malformed:
            raise DataFormatError(path, number, f"expected 'E<id><TAB>Type:<T id> Role:<id> ...', found {line!r}")
        (label, trigger), *arguments = parts
        return fields[0], (label, trigger, [(role, identifier) for role, identifier in arguments], number)

    def _resolve_events(self, path: Path, events: dict, spans: dict) -> list[tuple[str, str, list[tuple[str, str]], int]]:
        """Events with T ids only (an event argument becomes its event's trigger), the parts a skipped
        discontinuous span left out dropped (and counted); an id that names nothing is an error at its line."""
        for identifier, (_, trigger, _, number) in events.items():
            if trigger not in spans:
                raise DataFormatError(path, number, f"event {identifier}: trigger {trigger!r} is not the id of a T "
                                                    "(text-bound) annotation of this file")
        resolved = []
        for identifier, (label, trigger, arguments, number) in events.items():
            kept = []
            for role, argument in arguments:
                if argument not in spans and argument not in events:
                    raise DataFormatError(path, number, f"event {identifier}: {role} {argument!r} is neither a T nor "
                                                        "an E id of this file")
                argument = argument if argument in spans else events[argument][1]
                if spans[argument] is None:
                    self.dropped_event_parts += 1
                else:
                    kept.append((role, argument))
            if spans[trigger] is None:
                self.dropped_event_parts += 1
            else:
                resolved.append((label, trigger, kept, number))
        return resolved

    @staticmethod
    def _relation(path: Path, number: int, line: str) -> tuple[str, str, str, int]:
        fields = line.split("\t")
        parts = fields[1].split() if len(fields) >= 2 and not any(f.strip() for f in fields[2:]) else []
        arguments = dict(part.split(":", 1) for part in parts[1:] if ":" in part)
        if len(parts) != 3 or not fields[0][1:] or set(arguments) != {"Arg1", "Arg2"} or not all(arguments.values()):
            raise DataFormatError(path, number, f"expected 'R<id><TAB>Label Arg1:<T id> Arg2:<T id>', found {line!r}")
        return parts[0], arguments["Arg1"], arguments["Arg2"], number


# ---------------------------------------------------------------- PubTator

_TITLE = re.compile(r"(?P<pmid>[^\t|]+)\|t\|(?P<text>.*)")
_ABSTRACT = re.compile(r"(?P<pmid>[^\t|]+)\|a\|(?P<text>.*)")
_CONCEPT_SEPARATORS = re.compile(r"[|,]")  # one id field naming several concepts: BC5CDR "|", BioRED ","


class _PubTatorDocument:
    """One document's lines while it is being read."""

    def __init__(self, pmid: str, title: str, line: int):
        self.pmid, self.title, self.line = pmid, title, line
        self.abstract: str | None = None
        self.mentions: list[tuple[int, int, int, str, str, str]] = []  # line, start, end, surface, type, concept
        self.relations: list[tuple[int, str, str, str, tuple[str, ...]]] = []  # line, label, id 1, id 2, extra

    @property
    def text(self) -> str:
        return self.title if self.abstract is None else self.title + "\n" + self.abstract


@READERS.register("pubtator")
class PubTatorReader(CharSpanReader):
    """PubTator files (BC5CDR, NCBI-disease): documents separated by blank lines, each

    - ``PMID|t|title`` (first), ``PMID|a|abstract``;
    - mention lines ``PMID<TAB>start<TAB>end<TAB>surface<TAB>type[<TAB>concept id[<TAB>...]]``, offsets into
      the title, one separating character and the abstract (columns after the concept id, such as BC5CDR's
      individual mentions of a composite one, are ignored);
    - relation lines ``PMID<TAB>label<TAB>concept id<TAB>concept id[<TAB>...]`` (BC5CDR's ``CID``; BioRED's
      ``Association ... Novel`` adds a column). A line is a mention when its second column is an integer (a start
      offset; a relation label never is), else a relation.

    ``document.text`` is ``title + "\\n" + abstract`` (the title is then its own sentence, and the offsets are
    unchanged); ``doc_id`` is the PMID. A title line with another PMID also starts a new document.

    - ``document.entities``: every mention, in file order, typed by its type column.
    - ``document.attributes["concepts"]``: ``{(start, end): concept id}`` by each mention's token bounds (so a
      label map that renames or drops entities leaves it valid), the id field as written (several ids joined by
      ``|`` stay one string); mentions without one (see ``no_concept``) are not in it.
    - ``document.clusters``: mentions sharing a concept id field, clusters with two or more distinct spans only
      (a span that is in two clusters is kept in the first one; how many is logged).
    - ``document.attributes["relations"]``: ``[{"label", "head", "tail", "extra"}]`` with the concept ids of the
      relation line (document-level relations between concepts, not between mentions) and ``extra``, the tuple of
      its columns after the second id as written (BioRED's novelty flag: ``("Novel",)``; ``()`` for BC5CDR).
      A relation naming a concept that no mention of its document has (neither a mention's whole id field nor
      one of the ids it joins with ``|`` or ``,``) is dropped: the count is a warning per file, with the first
      one's line (and ``reader.dropped_relations`` holds ``(line, concept)`` for each).

    Options: ``language`` and ``split_tokens`` (``CharSpanReader``), ``no_concept`` (``option_help``).

    ``DataFormatError`` (file and line) for: a block that does not start with a title line, a title written
    twice, an abstract written twice, an abstract, mention or relation line whose PMID is not its document's, a
    mention with offsets that are not integers, outside the text, empty or on whitespace only, a mention whose
    surface differs from the text at its offsets, a mention without a type, a line that is none of these kinds, a
    mention boundary inside a token with ``split_tokens: false``.
    """

    option_help = {**CharSpanReader.option_help,
                   "no_concept": 'concept id fields that mean "no concept" (BC5CDR writes -1)'}

    def __init__(self, dataset: str = "", language: str = "en", split_tokens: bool = True,
                 no_concept: list[str] | tuple[str, ...] = ("", "-", "-1")):
        super().__init__(dataset, language, split_tokens)
        if isinstance(no_concept, str) or not all(isinstance(value, str) for value in no_concept):
            raise ConfigError(f"reader option no_concept must be a list of strings, not {no_concept!r}")
        self.no_concept = set(no_concept)
        self.repeated_mentions = 0
        self.dropped_relations: list[tuple[int, str]] = []

    def _read(self, path: Path) -> list[Document]:
        self.repeated_mentions = 0
        self.dropped_relations = []
        documents = []
        current: _PubTatorDocument | None = None

        def finish():
            nonlocal current
            if current is not None:
                documents.append(self._document(path, current))
            current = None

        with open_text(path) as lines:
            for number, line in enumerate(lines, start=1):
                line = line.rstrip("\r\n")

                def fail(message: str):
                    raise DataFormatError(path, number, message)

                def check(pmid: str, what: str):
                    if current is None:
                        fail(f"a document without a title line: expected 'PMID|t|title' before this {what}")
                    if pmid != current.pmid:
                        fail(f"{what} of PMID {pmid!r} inside document {current.pmid!r} (missing blank line?)")

                if not line.strip():
                    finish()
                    continue
                title = _TITLE.fullmatch(line)
                abstract = _ABSTRACT.fullmatch(line)
                columns = line.split("\t")
                if title:
                    if current is not None and current.pmid == title["pmid"]:
                        fail(f"a second title line for document {title['pmid']!r}")
                    finish()
                    current = _PubTatorDocument(title["pmid"], title["text"], number)
                elif abstract:
                    check(abstract["pmid"], "abstract line")
                    if current.abstract is not None:
                        fail(f"a second abstract line for document {current.pmid!r}")
                    current.abstract = abstract["text"]
                elif len(columns) >= 4 and _INTEGER.fullmatch(columns[1]):
                    check(columns[0], "mention line")
                    if len(columns) == 4:
                        fail("a mention line needs at least 5 columns: PMID, start, end, surface, type[, concept id]")
                    if not _INTEGER.fullmatch(columns[2]):
                        fail(f"mention offsets must be integers, found {columns[1]!r} and {columns[2]!r}")
                    if not columns[4]:
                        fail(f"mention {columns[3]!r} has no type (fifth column)")
                    concept = columns[5] if len(columns) > 5 else ""
                    current.mentions.append((number, int(columns[1]), int(columns[2]), columns[3], columns[4],
                                             concept))
                elif len(columns) >= 4:
                    check(columns[0], "relation line")
                    current.relations.append((number, columns[1], columns[2], columns[3], tuple(columns[4:])))
                else:
                    fail(f"expected 'PMID|t|title', 'PMID|a|abstract', a mention line "
                         f"'PMID<TAB>start<TAB>end<TAB>surface<TAB>type<TAB>id' or a relation line "
                         f"'PMID<TAB>label<TAB>id<TAB>id', found {line!r}")
        finish()
        if self.repeated_mentions:
            logger.info("%s: %d mentions share their span with a mention of an earlier concept: kept in the "
                        "first cluster only", path, self.repeated_mentions)
        if self.dropped_relations:
            line, concept = self.dropped_relations[0]
            logger.warning("%s: dropped %d relations naming a concept that no mention of their document has "
                           "(first: %s:%d, concept %r)", path, len(self.dropped_relations), path, line, concept)
        return documents

    def _document(self, path: Path, raw: _PubTatorDocument) -> Document:
        text = raw.text
        entities, entity_lines, concepts, mentions = [], [], [], []
        for number, start, end, surface, label, concept in raw.mentions:
            if not 0 <= start < end <= len(text):
                raise DataFormatError(path, number, f"mention [{start}, {end}) is outside the text of document "
                                                    f"{raw.pmid!r} (length {len(text)}) or empty")
            if text[start:end] != surface:
                raise DataFormatError(path, number, f"the text at [{start}, {end}) is {text[start:end]!r}, "
                                                    f"not {surface!r}")
            if not surface.strip():
                raise DataFormatError(path, number, f"mention [{start}, {end}) covers only whitespace")
            entities.append((start, end, label))
            entity_lines.append(number)
            concepts.append(None if concept in self.no_concept else concept)
        document = self.tokenized_document(path, raw.line, raw.pmid, text, entities, entity_lines)
        for span, concept, number in zip(document.entities, concepts, entity_lines):
            if concept is not None:
                mentions.append(Mention(span.start, span.end, concept, span.label, number))
        clusters, repeated = mentions_to_clusters(mentions, keep_singletons=False)
        self.repeated_mentions += repeated
        document.clusters = [[Span(start, end) for start, end in cluster] for cluster in clusters]
        document.attributes["concepts"] = {span.bounds: concept for span, concept in zip(document.entities, concepts)
                                           if concept is not None}
        known = {part for concept in concepts if concept is not None
                 for part in (concept, *_CONCEPT_SEPARATORS.split(concept))}
        document.attributes["relations"] = []
        for number, label, head, tail, extra in raw.relations:
            missing = next((concept for concept in (head, tail) if concept not in known), None)
            if missing is None:
                document.attributes["relations"].append({"label": label, "head": head, "tail": tail, "extra": extra})
            else:
                self.dropped_relations.append((number, missing))
        return document
