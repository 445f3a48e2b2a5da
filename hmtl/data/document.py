"""The one data model every reader produces and every task consumes (DESIGN.md: documents are the unit of data).

Offsets are token indices over the whole document, end-exclusive: ``Span(3, 5)`` covers tokens 3 and 4.
A corpus that lacks a layer (no relations, no clusters) simply leaves it empty.
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Callable, Iterator


@dataclass(frozen=True, order=True)
class Span:
    start: int
    end: int  # exclusive
    label: str | None = None

    def __post_init__(self) -> None:
        if self.start < 0 or self.end <= self.start:
            raise ValueError(f"span [{self.start}, {self.end}) is empty or negative")

    @property
    def bounds(self) -> tuple[int, int]:
        return (self.start, self.end)


@dataclass(frozen=True)
class Relation:
    head: Span
    tail: Span
    label: str


@dataclass(frozen=True)
class Event:
    """An event (DyGIE++'s ``events``): a trigger span labelled with the event type, and argument spans each
    labelled with its role. Arguments lie in the trigger's sentence and may nest or repeat a span under another
    role (PHEE's ``Treatment.Drug`` inside or equal to its ``Treatment``)."""

    trigger: Span
    arguments: tuple[Span, ...] = ()


@dataclass
class Document:
    """A document: sentences of tokens plus optional annotation layers.

    ``entities``: typed spans (nesting allowed). ``relations``: directed, between spans of ``entities``.
    ``clusters``: coreference chains of untyped spans. ``token_tags``: token-level layers such as
    ``{"upos": [[...], ...]}``, one list per sentence. ``text`` and ``char_offsets`` (one ``(start, end)`` per
    token, end-exclusive) are kept when the document was tokenized from raw text, so predictions can point back
    into it. ``attributes`` holds what a format carries beyond these layers (e.g. PubTator's document-level
    relations and concept IDs). ``events``: triggers with their arguments, each event inside one sentence.
    ``sentence_labels``: one list of labels per sentence, a sentence classifier's gold (empty when the corpus has
    none). ``unannotated``: indices of sentences whose entities, relations and events were never annotated (ADE's
    negative sentences): unknown, not absent, so the span heads leave them out of training and scoring.
    """

    doc_id: str
    sentences: list[list[str]]
    dataset: str = ""
    entities: list[Span] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    clusters: list[list[Span]] = field(default_factory=list)
    token_tags: dict[str, list[list[str]]] = field(default_factory=dict)
    text: str = ""
    char_offsets: list[tuple[int, int]] = field(default_factory=list)
    attributes: dict = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    sentence_labels: list[list[str]] = field(default_factory=list)
    unannotated: set[int] = field(default_factory=set)

    @property
    def tokens(self) -> list[str]:
        return [tok for sentence in self.sentences for tok in sentence]

    @property
    def num_tokens(self) -> int:
        return sum(len(s) for s in self.sentences)

    def sentence_offsets(self) -> list[int]:
        """Document-level index of each sentence's first token."""
        offsets, total = [], 0
        for sentence in self.sentences:
            offsets.append(total)
            total += len(sentence)
        return offsets

    def sentence_of(self, token: int, offsets: list[int] | None = None) -> int:
        """Index of the sentence holding ``token``; pass ``sentence_offsets()`` when asking for many tokens."""
        if token < 0:
            raise IndexError(token)
        return bisect_right(offsets if offsets is not None else self.sentence_offsets(), token) - 1

    def entities_by_sentence(self) -> Iterator[tuple[int, list[str], list[Span]]]:
        """Yield (sentence offset, tokens, entities inside it with sentence-level offsets)."""
        offsets = self.sentence_offsets()
        by_sentence: list[list[Span]] = [[] for _ in self.sentences]
        for span in self.entities:
            index = self.sentence_of(span.start, offsets)
            start = offsets[index]
            by_sentence[index].append(Span(span.start - start, span.end - start, span.label))
        for offset, sentence, spans in zip(offsets, self.sentences, by_sentence):
            yield offset, sentence, sorted(spans)

    def validate(self, source: str = "") -> None:
        """Raise ``ValueError`` naming the document when an annotation points outside it or at nothing."""
        where = f"{source}: document {self.doc_id!r}" if source else f"document {self.doc_id!r}"
        if not self.sentences or not any(self.sentences):
            raise ValueError(f"{where} has no tokens")
        n = self.num_tokens
        offsets = self.sentence_offsets() + [n]
        for span in self.entities:
            if span.end > n:
                raise ValueError(f"{where}: entity {span} ends after the last token ({n})")
            sentence = self.sentence_of(span.start, offsets)
            if span.end > offsets[sentence + 1]:
                raise ValueError(f"{where}: entity {span} crosses a sentence boundary")
        known = {(s.start, s.end) for s in self.entities}
        for rel in self.relations:
            for arg in (rel.head, rel.tail):
                if arg.bounds not in known:
                    raise ValueError(f"{where}: relation {rel.label} points at {arg.bounds}, which is not an entity")
        for cluster in self.clusters:
            for span in cluster:
                if span.end > n:
                    raise ValueError(f"{where}: coreference mention {span} ends after the last token ({n})")
        for event in self.events:
            if event.trigger.end > n:
                raise ValueError(f"{where}: event trigger {event.trigger} ends after the last token ({n})")
            sentence = self.sentence_of(event.trigger.start, offsets)
            low, high = offsets[sentence], offsets[sentence + 1]
            for part, span in [("trigger", event.trigger), *(("argument", a) for a in event.arguments)]:
                if span.label is None:
                    raise ValueError(f"{where}: event {part} {span.bounds} has no {'type' if part == 'trigger' else 'role'}")
                if not (low <= span.start and span.end <= high):
                    raise ValueError(f"{where}: event {part} {span} is not inside the trigger's sentence "
                                     f"(tokens {low}..{high - 1})")
        if self.sentence_labels and len(self.sentence_labels) != len(self.sentences):
            raise ValueError(f"{where}: {len(self.sentence_labels)} sentence label lists for {len(self.sentences)} "
                             "sentences")
        if any(not 0 <= index < len(self.sentences) for index in self.unannotated):
            raise ValueError(f"{where}: unannotated sentences {sorted(self.unannotated)} are not all sentences of it")
        for span in self.entities + [event.trigger for event in self.events]:
            if self.sentence_of(span.start, offsets) in self.unannotated:
                raise ValueError(f"{where}: {span} is annotated in a sentence marked unannotated")
        if self.char_offsets and len(self.char_offsets) != n:
            raise ValueError(f"{where}: {len(self.char_offsets)} character offsets for {n} tokens")
        for name, layer in self.token_tags.items():
            if [len(t) for t in layer] != [len(s) for s in self.sentences]:
                raise ValueError(f"{where}: token layer {name!r} does not match the sentence lengths")


def relabeled(entities: list[Span], relations: list[Relation],
              mapping: Callable[[str], str | None]) -> tuple[list[Span], list[Relation]]:
    """Entities with their types passed through ``mapping`` (None: dropped) and the relations whose arguments
    both remain, with the arguments' new types: the one rule for gold read with a label map and for the
    predictions scored against it."""
    new = {span: None if (label := mapping(span.label)) is None else Span(span.start, span.end, label) for span in entities}
    kept = [Relation(new[r.head], new[r.tail], r.label) for r in relations if new.get(r.head) and new.get(r.tail)]
    return [span for span in new.values() if span is not None], kept
