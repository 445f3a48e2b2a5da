"""Raw text to sentences of tokens with character offsets, and character spans to token spans.

The tokenizer is spaCy's rule-based English tokenizer with its rule-based sentencizer (``spacy.blank("en")``: no
model download). It splits hyphenated words ("Cisplatin-induced" -> "Cisplatin" "-" "induced") and keeps
abbreviations whole ("U.S."), as the annotated corpora do. Line breaks always end a sentence (titles and headings
rarely end in a full stop). Readers of character-offset corpora (JSONL spans, BRAT, PubTator, simple-char) and
raw-text prediction share it, so a model sees the same tokens at training and at prediction time.
"""
from __future__ import annotations

import logging
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from functools import lru_cache

from hmtl.data.document import Document, Span

logger = logging.getLogger(__name__)
LINE_BREAK = re.compile(r"\n+")


@lru_cache(maxsize=4)
def pipeline(language: str):
    import spacy

    try:
        nlp = spacy.blank(language)
    except (ImportError, KeyError) as error:  # spaCy raises ImportError for an unknown language code
        cause = error.__cause__ or error.__context__  # or for a language whose module failed to import
        if isinstance(cause, ImportError) and cause.name not in (None, f"spacy.lang.{language}"):
            raise ValueError(f"language: spaCy's {language!r} tokenizer failed to import ({cause}); "
                             "reinstall spacy and its dependencies") from None
        raise ValueError(f"language: spaCy has no tokenizer for {language!r}") from None
    nlp.add_pipe("sentencizer")
    return nlp


@dataclass
class TokenizedText:
    """Sentences of tokens and each token's ``(start, end)`` character offsets in the text (end-exclusive)."""

    text: str
    sentences: list[list[str]] = field(default_factory=list)
    offsets: list[list[tuple[int, int]]] = field(default_factory=list)


def tokenize(text: str, language: str = "en") -> TokenizedText:
    """Split ``text`` into sentences (line breaks, then spaCy's sentencizer) and tokens, keeping offsets."""
    return tokenize_many([text], language)[0]


def tokenize_many(texts: list[str], language: str = "en") -> list[TokenizedText]:
    """``tokenize`` for many texts at once: their paragraphs go through spaCy's ``pipe`` together."""
    paragraphs = []  # (text index, character offset, paragraph)
    for index, text in enumerate(texts):
        start = 0
        for paragraph_end in [m.start() for m in LINE_BREAK.finditer(text)] + [len(text)]:
            if text[start:paragraph_end].strip():
                paragraphs.append((index, start, text[start:paragraph_end]))
            match = LINE_BREAK.match(text, paragraph_end)
            start = match.end() if match else paragraph_end
    results = [TokenizedText(text) for text in texts]
    for (index, start, _), parsed in zip(paragraphs, pipeline(language).pipe(p for _, _, p in paragraphs)):
        for sentence in parsed.sents:
            tokens = [t for t in sentence if not t.is_space]
            if tokens:
                results[index].sentences.append([t.text for t in tokens])
                results[index].offsets.append([(start + t.idx, start + t.idx + len(t.text)) for t in tokens])
    return results


class AlignmentError(ValueError):
    """A character span that cannot be mapped onto tokens (outside the text, or on whitespace only)."""


@dataclass
class AlignmentCounts:
    """What aligning character spans to tokens had to change, for the reader's log line."""

    split_tokens: int = 0  # tokens split because an annotation boundary fell inside them
    merged_sentences: int = 0  # sentence boundaries removed because an annotation crossed them

    def add(self, other: "AlignmentCounts") -> None:
        self.split_tokens += other.split_tokens
        self.merged_sentences += other.merged_sentences

    def log(self, path) -> None:
        if self.split_tokens or self.merged_sentences:
            logger.info("%s: split %d tokens at annotation boundaries, joined %d sentences an annotation crossed",
                        path, self.split_tokens, self.merged_sentences)


def align(
    tokenized: TokenizedText, spans: list[tuple[int, int]], split_tokens: bool = True
) -> tuple[TokenizedText, list[tuple[int, int]], AlignmentCounts]:
    """Map character spans to document-level token spans ``[start, end)``.

    A span boundary inside a token splits the token there (``split_tokens``; otherwise an ``AlignmentError``); a
    span across a sentence boundary joins the two sentences. Leading and trailing whitespace of a span is ignored.
    Returns the (possibly re-split) text, the token spans in the order given, and what was changed."""
    text = tokenized.text
    counts = AlignmentCounts()
    trimmed = []
    for start, end in spans:
        if not 0 <= start < end <= len(text):
            raise AlignmentError(f"character span [{start}, {end}) is outside the text (length {len(text)}) or empty")
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if start == end:
            raise AlignmentError(f"character span [{start}, {end}) covers only whitespace")
        trimmed.append((start, end))
    boundaries = sorted({b for span in trimmed for b in span})
    sentences, offsets = [], []
    for tokens, token_offsets in zip(tokenized.sentences, tokenized.offsets):
        new_tokens, new_offsets = [], []
        for token, (t_start, t_end) in zip(tokens, token_offsets):
            cuts = boundaries[bisect_right(boundaries, t_start) : bisect_left(boundaries, t_end)]
            if cuts and not split_tokens:
                raise AlignmentError(f"an annotation boundary at character {cuts[0]} cuts the token {token!r} "
                                     f"[{t_start}, {t_end})")
            counts.split_tokens += bool(cuts)
            for piece_start, piece_end in zip([t_start] + cuts, cuts + [t_end]):
                new_tokens.append(text[piece_start:piece_end])
                new_offsets.append((piece_start, piece_end))
        sentences.append(new_tokens)
        offsets.append(new_offsets)
    flat = [offset for sentence in offsets for offset in sentence]
    starts = [s for s, _ in flat]
    ends = [e for _, e in flat]
    token_spans = []
    for start, end in trimmed:
        first = bisect_left(starts, start)
        last = bisect_left(ends, end)
        if first == len(starts) or last == len(ends) or starts[first] != start or ends[last] != end:
            raise AlignmentError(f"character span [{start}, {end}) {text[start:end]!r} does not start and end at tokens")
        token_spans.append((first, last + 1))
    sentences, offsets, counts.merged_sentences = _join_crossed(sentences, offsets, token_spans)
    return TokenizedText(text, sentences, offsets), token_spans, counts


def _join_crossed(sentences: list, offsets: list, token_spans: list[tuple[int, int]]) -> tuple[list, list, int]:
    """Join consecutive sentences wherever a token span starts in one and ends in a later one."""
    sentence_of = [index for index, sentence in enumerate(sentences) for _ in sentence]
    joined = set()  # sentence i is joined to sentence i - 1
    for start, end in token_spans:
        joined.update(range(sentence_of[start] + 1, sentence_of[end - 1] + 1))
    new_sentences, new_offsets = [], []
    for index, (tokens, token_offsets) in enumerate(zip(sentences, offsets)):
        if index in joined:
            new_sentences[-1] = new_sentences[-1] + tokens
            new_offsets[-1] = new_offsets[-1] + token_offsets
        else:
            new_sentences.append(tokens)
            new_offsets.append(token_offsets)
    return new_sentences, new_offsets, len(joined)


def document_from_text(
    doc_id: str,
    text: str,
    entities: list[tuple[int, int, str]],
    language: str = "en",
    split_tokens: bool = True,
) -> tuple[Document, AlignmentCounts]:
    """A ``Document`` from raw text and typed character spans; its ``text`` and ``char_offsets`` keep the
    token <-> character mapping. Raises ``AlignmentError`` for a span that cannot be placed on tokens."""
    tokenized, token_spans, counts = align(tokenize(text, language), [(s, e) for s, e, _ in entities], split_tokens)
    document = Document(doc_id=doc_id, sentences=tokenized.sentences, text=text,
                        char_offsets=[offset for sentence in tokenized.offsets for offset in sentence])
    document.entities = [Span(start, end, label) for (start, end), (_, _, label) in zip(token_spans, entities)]
    return document, counts
