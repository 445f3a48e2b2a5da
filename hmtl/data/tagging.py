"""Tag schemes for flat spans.

``tags_to_spans`` decodes IOB1, IOB2 (BIO), BIOES and BILOU alike, with the chunk boundaries of conlleval (the
CoNLL shared-task scorer, in its BIOES-aware form):

- a chunk starts at ``B-``/``S-``/``U-``, at ``I-``/``E-``/``L-`` after ``O`` or after a chunk that has ended
  (``E-``/``L-``/``S-``/``U-``), and wherever the type changes;
- a chunk ends before ``O``, ``B-``, ``S-``/``U-``, after ``E-``/``L-``/``S-``/``U-``, and wherever the type changes.

So IOB1 ``I-PER I-PER`` is one chunk, ``O I-ORG`` starts one, ``I-PER I-LOC`` is two, ``B-PER I-PER B-PER`` is two.
``spans_to_tags`` encodes non-overlapping spans as BIOES, IOB2 or IOB1.
"""
from __future__ import annotations

import re
from typing import Iterable, Sequence

from hmtl.data.document import Span

#: BILOU prefixes are read as their BIOES equivalents.
PREFIXES = {"B": "B", "I": "I", "E": "E", "S": "S", "L": "E", "U": "S"}
SCHEMES = ("bioes", "iob2", "iob1")
MULTIPLE_TAGS = re.compile(r"[,;|\s]")  # "B-corporation,B-product" is two tags in one column, not a type


def split_tag(tag: str) -> tuple[str, str]:
    """``"B-PER" -> ("B", "PER")``, ``"L-PER" -> ("E", "PER")``, ``"O" -> ("O", "")``.

    Anything else (``"X-PER"``, ``"B-"``, ``"PER"``, ``""``) is a ValueError naming the tag."""
    if tag == "O":
        return "O", ""
    prefix, sep, label = tag.partition("-")
    if not sep or prefix not in PREFIXES or not label:
        raise ValueError(f"invalid tag {tag!r}: expected O or one of B-, I-, E-, S-, L-, U- followed by a type")
    if MULTIPLE_TAGS.search(label):
        raise ValueError(f"invalid tag {tag!r}: expected one tag per token (a type holds no comma, semicolon, "
                         "bar or space)")
    return PREFIXES[prefix], label


def _chunk_ends(previous: str, previous_type: str, prefix: str, label: str) -> bool:
    """Does the chunk holding the previous token end before this token?"""
    if previous in ("E", "S"):
        return True
    if previous in ("B", "I") and prefix in ("B", "S", "O"):
        return True
    return previous != "O" and previous_type != label


def _chunk_starts(previous: str, previous_type: str, prefix: str, label: str) -> bool:
    """Does a new chunk start at this token?"""
    if prefix in ("B", "S"):
        return True
    if prefix in ("I", "E") and previous in ("O", "E", "S"):
        return True
    return prefix != "O" and previous_type != label


def tags_to_spans(tags: Sequence[str]) -> list[Span]:
    """Decode a tag sequence in any of IOB1 / IOB2 / BIOES / BILOU into end-exclusive typed spans, in order."""
    spans: list[Span] = []
    start: int | None = None
    previous, previous_type = "O", ""
    for i, tag in enumerate(tags):
        prefix, label = split_tag(tag)
        if start is not None and _chunk_ends(previous, previous_type, prefix, label):
            spans.append(Span(start, i, previous_type))
            start = None
        if _chunk_starts(previous, previous_type, prefix, label):
            start = i
        previous, previous_type = prefix, label
    if start is not None:
        spans.append(Span(start, len(tags), previous_type))
    return spans


def spans_to_tags(spans: Iterable[Span], length: int, scheme: str = "bioes") -> list[str]:
    """Encode non-overlapping typed spans over ``length`` tokens as ``"bioes"``, ``"iob2"`` or ``"iob1"`` tags.

    Raises ValueError for an unknown scheme, a span without a type, a span past ``length`` or overlapping spans
    (a flat tag sequence cannot hold both)."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown tag scheme {scheme!r}: expected one of {', '.join(SCHEMES)}")
    tags = ["O"] * length
    previous: Span | None = None
    for span in sorted(spans):
        if not span.label:
            raise ValueError(f"span {span} has no type")
        if span.end > length:
            raise ValueError(f"span {span} is outside a sequence of {length} tokens")
        if previous is not None and span.start < previous.end:
            raise ValueError(f"span {span} overlaps span {previous}; a flat tag sequence cannot hold both")
        for i in range(span.start, span.end):
            tags[i] = f"I-{span.label}"
        if scheme == "iob2":
            tags[span.start] = f"B-{span.label}"
        elif scheme == "iob1":
            # IOB1 marks a start only where it is ambiguous: right after a chunk of the same type.
            if previous is not None and previous.end == span.start and previous.label == span.label:
                tags[span.start] = f"B-{span.label}"
        elif span.end - span.start == 1:
            tags[span.start] = f"S-{span.label}"
        else:
            tags[span.start] = f"B-{span.label}"
            tags[span.end - 1] = f"E-{span.label}"
        previous = span
    return tags


def convert_tags(tags: Sequence[str], scheme: str = "bioes") -> list[str]:
    """Re-encode a tag sequence (any scheme) in ``scheme``, keeping the chunks conlleval would find."""
    return spans_to_tags(tags_to_spans(tags), len(tags), scheme)
