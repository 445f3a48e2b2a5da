"""Tag schemes for flat spans: decode IOB1, IOB2 and BIOES/BILOU with conlleval semantics; encode BIOES or IOB2."""
from __future__ import annotations

from hmtl.data.document import Span

PREFIXES = {"B", "I", "E", "S", "L", "U"}


def split_tag(tag: str) -> tuple[str, str]:
    """``"B-PER" -> ("B", "PER")``, ``"O" -> ("O", "")``; anything else is a ValueError naming the tag."""
    if tag == "O":
        return "O", ""
    prefix, sep, label = tag.partition("-")
    if not sep or prefix not in PREFIXES or not label:
        raise ValueError(f"invalid tag {tag!r}: expected O or one of B-, I-, E-, S-, L-, U- followed by a type")
    return prefix, label


def tags_to_spans(tags: list[str]) -> list[Span]:
    """Chunks as conlleval finds them: a chunk starts at B/S/U, at I/E/L after O, or at a change of type;
    it ends before O, B, S, U, after E/L/S/U, or at a change of type."""
    spans: list[Span] = []
    start, label = None, ""
    previous = "O"
    for i, tag in enumerate(tags):
        prefix, kind = split_tag(tag)
        begins = prefix in ("B", "S", "U") or (prefix != "O" and (start is None or kind != label or previous in ("E", "L", "S", "U")))
        if start is not None and (prefix == "O" or begins):
            spans.append(Span(start, i, label))
            start = None
        if begins:
            start, label = i, kind
        if start is not None and prefix in ("E", "L", "S", "U"):
            spans.append(Span(start, i + 1, label))
            start = None
        previous = prefix
    if start is not None:
        spans.append(Span(start, len(tags), label))
    return spans


def spans_to_tags(spans: list[Span], length: int, scheme: str = "bioes") -> list[str]:
    """Encode non-overlapping spans as BIOES or IOB2 tags."""
    if scheme not in ("bioes", "iob2"):
        raise ValueError(f"unknown tag scheme {scheme!r}: expected 'bioes' or 'iob2'")
    tags = ["O"] * length
    for span in sorted(spans):
        if span.end > length:
            raise ValueError(f"span {span} is outside a sequence of {length} tokens")
        if any(tag != "O" for tag in tags[span.start : span.end]):
            raise ValueError(f"span {span} overlaps another span; a flat tag sequence cannot hold both")
        width = span.end - span.start
        for i in range(span.start, span.end):
            tags[i] = f"I-{span.label}"
        tags[span.start] = f"B-{span.label}"
        if scheme == "bioes":
            if width == 1:
                tags[span.start] = f"S-{span.label}"
            else:
                tags[span.end - 1] = f"E-{span.label}"
    return tags
