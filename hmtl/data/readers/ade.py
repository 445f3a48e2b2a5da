"""The ADE corpus V2 (Gurulingappa et al. 2012): adverse drug effects in MEDLINE case reports.

A split is a folder of three files:

- ``DRUG-AE.rel``: ``PMID|sentence|effect|begin|end|drug|begin|end``, one (drug, adverse effect) relation a line;
- ``DRUG-DOSE.rel``: ``PMID|sentence|dose|begin|end|drug|begin|end``, one (drug, dose) relation a line;
- ``ADE-NEG.txt``: ``PMID NEG sentence``, the sentences without an adverse drug effect, never annotated.

The begin and end offsets point into the whole abstract, which the corpus does not include, so each mention is
found in its sentence by its surface. Where a surface occurs more than once, the offsets decide: every mention of a
sentence implies where the sentence starts in the abstract (its begin minus where the surface occurs), and the start
the most mentions agree on wins (a tie goes to the later start, which places the mentions earliest); each mention
then sits where that start puts it. On the released corpus every mention agrees with its sentence's start; one that
does not goes to its occurrence nearest to where the start puts it, and how many did is logged.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from hmtl.data.document import Document, Relation, Span
from hmtl.data.readers.base import open_text
from hmtl.data.readers.char_spans import CharSpanReader
from hmtl.errors import DataFormatError
from hmtl.registry import READERS

logger = logging.getLogger(__name__)

RELATION_FILES = {"DRUG-AE.rel": "Adverse-Effect", "DRUG-DOSE.rel": "Dose"}  # file -> relation label = the type of its
NEGATIVE_FILE = "ADE-NEG.txt"                                               # first mention
DRUG = "Drug"
POSITIVE, NEGATIVE = "ADE", "NEG"  # the sentence labels


@dataclass
class _Mention:
    surface: str
    begin: int  # in the abstract
    label: str
    line: int = field(compare=False)


@dataclass
class _Sentence:
    text: str
    path: Path
    line: int  # where it first appears
    mentions: list[_Mention] = field(default_factory=list)
    relations: list[tuple[int, int, str]] = field(default_factory=list)  # drug, other (mention indices), label
    start: int = 0  # in the abstract, found from the mentions' offsets

    @property
    def negative(self) -> bool:
        return self.path.name == NEGATIVE_FILE


def occurrences(text: str, surface: str) -> list[int]:
    """Every position of ``surface`` in ``text``, overlapping ones included."""
    found, position = [], text.find(surface)
    while position >= 0:
        found.append(position)
        position = text.find(surface, position + 1)
    return found


@READERS.register("ade")
class AdeReader(CharSpanReader):
    """One split folder of the ADE corpus (see the module docstring) into one ``Document`` per PMID.

    - Sentences: each distinct sentence of the PMID (a line repeated is read once), the annotated ones in the
      order of their place in the abstract, then the ``ADE-NEG.txt`` ones in file order (the corpus does not say
      where those stood). ``text`` is the sentences joined by line breaks; each stays one sentence.
    - ``entities``: ``Drug``, ``Adverse-Effect`` and ``Dose`` mentions; ``relations``: ``Adverse-Effect`` and
      ``Dose``, from the drug to the effect or dose.
    - ``sentence_labels``: ``["ADE"]`` for a sentence of the ``.rel`` files, ``["NEG"]`` for one of
      ``ADE-NEG.txt``.
    - ``unannotated``: the ``ADE-NEG.txt`` sentences. Their drugs and effects were never marked (unknown, not
      absent), so the entity and relation heads leave them out; only a sentence classifier reads them.

    Options: ``language`` and ``split_tokens`` (``CharSpanReader``).

    ``DataFormatError`` (file and line) for: a ``.rel`` line without 8 ``|``-separated fields, offsets that are
    not integers or do not span the surface's length, a surface that is not in its sentence, an ``ADE-NEG.txt``
    line not ``PMID NEG sentence`` or whose sentence is also a ``.rel`` sentence of the PMID, a mention that
    cannot be placed on tokens with ``split_tokens: false``; a path that is not a folder holding the three files.
    """

    def _read(self, path: Path) -> list[Document]:
        if not path.is_dir():
            raise DataFormatError(path, None, f"expected the folder of one ADE split, holding "
                                              f"{', '.join(RELATION_FILES)} and {NEGATIVE_FILE}")
        sentences: dict[tuple[str, str], _Sentence] = {}  # (PMID, text) -> sentence, in reading order
        for name, label in RELATION_FILES.items():
            with open_text(path / name) as lines:
                for number, line in enumerate(lines, start=1):
                    if line.strip():
                        self._relation(path / name, number, line.rstrip("\n"), label, sentences)
        with open_text(path / NEGATIVE_FILE) as lines:
            for number, line in enumerate(lines, start=1):
                if line.strip():
                    self._negative(path / NEGATIVE_FILE, number, line.rstrip("\n"), sentences)
        by_pmid: dict[str, list[_Sentence]] = {}
        for (pmid, _), sentence in sentences.items():
            by_pmid.setdefault(pmid, []).append(sentence)
        disagreeing = sum(self._place(sentence) for sentence in sentences.values())
        if disagreeing:
            logger.warning("%s: %d mentions disagree with the other offsets of their sentence: each was put at its "
                           "occurrence nearest to where the others place it", path, disagreeing)
        return [self._document(pmid, found) for pmid, found in by_pmid.items()]

    @staticmethod
    def _relation(path: Path, number: int, line: str, label: str, sentences: dict) -> None:
        fields = line.split("|")
        if len(fields) != 8:
            raise DataFormatError(path, number, f"expected 8 '|'-separated fields (PMID|sentence|{label.lower()}|begin|"
                                                f"end|drug|begin|end), found {len(fields)}")
        pmid, text = fields[0], fields[1]
        sentence = sentences.setdefault((pmid, text), _Sentence(text, path, number))
        mentions = []
        for surface, begin, end, mention_label in ((*fields[2:5], label), (*fields[5:8], DRUG)):
            if not (begin.isdigit() and end.isdigit()) or int(end) - int(begin) != len(surface):
                raise DataFormatError(path, number, f"{mention_label} {surface!r}: offsets {begin!r} and {end!r} are "
                                                    f"not integers {len(surface)} characters apart")
            if not surface.strip() or surface not in text:
                raise DataFormatError(path, number, f"{mention_label} {surface!r} is not in its sentence {text!r}")
            mention = _Mention(surface, int(begin), mention_label, number)
            if mention not in sentence.mentions:
                sentence.mentions.append(mention)
            mentions.append(sentence.mentions.index(mention))
        other, drug = mentions
        if (drug, other, label) not in sentence.relations:
            sentence.relations.append((drug, other, label))

    @staticmethod
    def _negative(path: Path, number: int, line: str, sentences: dict) -> None:
        pmid, marker, text = (line.split(" ", 2) + ["", ""])[:3]
        if marker != NEGATIVE or not pmid or not text.strip():
            raise DataFormatError(path, number, f"expected 'PMID NEG sentence', found {line[:60]!r}")
        sentence = sentences.setdefault((pmid, text), _Sentence(text, path, number))
        if not sentence.negative:
            raise DataFormatError(path, number, f"this sentence of PMID {pmid} is also an annotated sentence of "
                                                f"{sentence.path.name} (line {sentence.line})")

    @staticmethod
    def _place(sentence: _Sentence) -> int:
        """Find the sentence's start in the abstract (see the module docstring); returns how many of its mentions
        disagree with it."""
        found = [occurrences(sentence.text, m.surface) for m in sentence.mentions]
        votes = Counter(start for mention, places in zip(sentence.mentions, found)
                        for start in {mention.begin - place for place in places})
        if votes:
            sentence.start = max(votes, key=lambda start: (votes[start], start))
        return sum(mention.begin - sentence.start not in places for mention, places in zip(sentence.mentions, found))

    def _document(self, pmid: str, sentences: list[_Sentence]) -> Document:
        sentences = sorted(sentences, key=lambda s: (s.negative, s.start))
        document = Document(doc_id=pmid, sentences=[], text="\n".join(s.text for s in sentences))
        character = 0
        for index, sentence in enumerate(sentences):
            tokenized = self._tokenized(pmid, sentence)
            offset = document.num_tokens
            document.sentences.append(tokenized.tokens)
            document.char_offsets += [(start + character, end + character) for start, end in tokenized.char_offsets]
            shifted = [Span(s.start + offset, s.end + offset, s.label) for s in tokenized.entities]
            document.entities += list(dict.fromkeys(shifted))
            document.relations += [Relation(shifted[drug], shifted[other], label)
                                   for drug, other, label in sentence.relations]
            document.sentence_labels.append([NEGATIVE if sentence.negative else POSITIVE])
            if sentence.negative:
                document.unannotated.add(index)
            character += len(sentence.text) + 1
        return document

    def _tokenized(self, pmid: str, sentence: _Sentence) -> Document:
        """The sentence tokenized with its mentions (one entity per mention, in order), placed where its start puts
        them (or at the nearest occurrence)."""
        entities = []
        for mention in sentence.mentions:
            place = min(occurrences(sentence.text, mention.surface), key=lambda p: abs(mention.begin - sentence.start - p))
            entities.append((place, place + len(mention.surface), mention.label))
        return self.tokenized_document(sentence.path, sentence.line, pmid, sentence.text, entities,
                                       [m.line for m in sentence.mentions])
