"""GUM and OntoGUM coreference files (``gum.<split>.conll.gz``, ``ontogum.<split>.conll.gz``).

Each document sits between ``# begin document NAME`` and ``# end document`` and has one token per line,
``index<TAB>token<TAB>coref``, with ``index`` counting tokens within the document. The coref column uses the
brackets of ``hmtl.data.readers.coref_conll``: GUM writes typed ids ``(person-3-Lord_Byron)``, OntoGUM numeric
ids ``(3)``.

These files have no sentence breaks, so sentences come from the matching CoNLL-U file (by default
``gum.<split>.conllu.gz`` next to the coref file, for both schemes; option ``conllu``), matched by its
``# newdoc id`` and checked to hold exactly the same words (read with the ``conllu`` reader, which skips
multiword-token ranges and empty nodes).

What a document gets:

- GUM (typed ids): ``entities`` = every mention with its entity type (nested mentions allowed, the same span
  twice with one type kept once) and ``clusters`` = every chain, singletons included.
- OntoGUM (numeric ids): ``clusters`` only, and no singletons (a one-mention chain, if a file had one, is dropped;
  option ``keep_singletons`` overrides the default of each scheme).

**A mention that crosses a sentence boundary** (GUM has a handful, where the UD sentence split falls inside a
mention) stays in ``clusters``, since coreference is document-level, but is left out of ``entities``, since
mention detection works sentence by sentence (``Document.validate`` rejects such an entity); the number left out
is kept in ``reader.crossing_mentions`` and logged. Option ``cross_sentence="error"`` makes it a
``DataFormatError`` instead.

Data quirks handled (counted in ``reader.repeated_mentions`` / ``reader.blank_tokens`` and logged):

- A mention whose exact bounds are in two chains (OntoGUM has a few verbs written ``(22)(23)``) is kept in the
  first chain only (by first mention), so ``clusters`` is a partition of the mentions, as the CoNLL reference
  scorer assumes. Singletons left after this are dropped for OntoGUM like any other.
- An empty token in the coref file (OntoGUM writes the word ``|`` as nothing once) takes the CoNLL-U word.

Errors (``DataFormatError`` naming file and line): malformed brackets, a bracket closing an id that is not open,
an id left open at ``# end document``, a token index out of sequence, a document missing from the CoNLL-U file or
whose words differ from it, typed and numeric ids in one file.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

from hmtl.data.document import Document, Span
from hmtl.data.readers.base import Reader
from hmtl.data.readers.conllu import ConlluReader
from hmtl.data.readers.coref_conll import BracketParser, Mention, document_blocks, mentions_to_clusters
from hmtl.errors import ConfigError, DataFormatError
from hmtl.registry import READERS

logger = logging.getLogger(__name__)


def default_conllu_path(path: Path) -> Path:
    """``ontogum.dev.conll.gz`` / ``gum.dev.conll.gz`` -> ``gum.dev.conllu.gz`` in the same folder."""
    name = re.sub(r"^ontogum\.", "gum.", path.name)
    name = re.sub(r"\.conll(\.gz)?$", r".conllu\1", name)
    if name == path.name:
        raise DataFormatError(path, None, "cannot derive the CoNLL-U file with sentence boundaries from this name; "
                                          "set reader option 'conllu'")
    return path.with_name(name)


@READERS.register("gum")
class GumReader(Reader):
    """GUM / OntoGUM coreference files, with the sentence boundaries of their CoNLL-U (see the module docstring)."""

    option_help = {
        "conllu": "path of the CoNLL-U file with the sentence boundaries (default: derived from the file's name)",
        "keep_singletons": "keep mentions without a coreferent (default: true for GUM's typed ids, false for OntoGUM's)",
        "cross_sentence": ('a mention across a sentence boundary: "drop" keeps it in the clusters but not in the '
                           'entities, "error" stops'),
    }

    def __init__(self, dataset: str = "", conllu: str | None = None, keep_singletons: bool | None = None,
                 cross_sentence: str = "drop"):
        super().__init__(dataset)
        if cross_sentence not in ("drop", "error"):
            raise ConfigError(f"reader option cross_sentence must be 'drop' or 'error', not {cross_sentence!r}")
        self.conllu = conllu
        self.keep_singletons = keep_singletons
        self.cross_sentence = cross_sentence
        self.crossing_mentions = self.repeated_mentions = self.blank_tokens = 0

    def _read(self, path: Path) -> list[Document]:
        raw = self._read_coref(path)
        conllu_path = Path(self.conllu) if self.conllu else default_conllu_path(path)
        sentences_by_doc = {d.doc_id: d.sentences for d in ConlluReader(layers=()).read(conllu_path)}
        kinds = [(kind, begin) for *_, begin, kind in raw if kind is not None]
        scheme = kinds[0][0] if kinds else None  # a document without mentions follows the file's scheme
        for kind, begin in kinds:
            if kind != scheme:
                raise DataFormatError(path, begin, f"{kind} cluster ids here, {scheme} ones before: GUM's typed ids "
                                                   "and OntoGUM's numeric ids cannot share a file")
        self.crossing_mentions = self.repeated_mentions = self.blank_tokens = 0
        documents = []
        for name, tokens, mentions, begin_line, _ in raw:
            if name not in sentences_by_doc:
                raise DataFormatError(path, begin_line, f"document {name!r} is not in {conllu_path}")
            sentences = sentences_by_doc[name]
            words = [word for sentence in sentences for word in sentence]
            mismatch = next((i for i, (w, (t, _)) in enumerate(zip(words, tokens)) if w != t and t != ""), None)
            if mismatch is None and len(words) != len(tokens):
                mismatch = min(len(words), len(tokens))
            if mismatch is not None:
                line = tokens[mismatch][1] if mismatch < len(tokens) else begin_line
                raise DataFormatError(path, line, f"document {name!r}: tokens differ from {conllu_path} at token "
                                                  f"{mismatch} ({len(tokens)} tokens here, {len(words)} words there)")
            self.blank_tokens += sum(token == "" for token, _ in tokens)
            documents.append(self._document(path, name, sentences, mentions, typed=scheme == "typed"))
        if self.crossing_mentions:
            logger.info("%s: %d mentions cross a sentence boundary: kept in clusters, left out of entities",
                        path, self.crossing_mentions)
        if self.repeated_mentions:
            logger.info("%s: %d mentions are in two clusters: kept in the first only", path, self.repeated_mentions)
        if self.blank_tokens:
            logger.info("%s: %d empty tokens, their words taken from %s", path, self.blank_tokens, conllu_path)
        return documents

    def _read_coref(self, path: Path):
        """[(name, [(token, line)], mentions, begin line, 'typed'|'numeric'|None)] in file order."""
        documents = []
        for rest, begin_line, lines, end_line in document_blocks(path):
            name, tokens, parser = rest or f"{path.name}#{len(documents)}", [], BracketParser(path)
            for number, line in lines:
                if not line.strip():
                    continue
                columns = line.split("\t")
                if len(columns) != 3:
                    raise DataFormatError(path, number, f"expected 3 tab-separated columns (index, token, coref), found {len(columns)}")
                if columns[0] != str(len(tokens)):
                    raise DataFormatError(path, number, f"token index {columns[0]!r} out of sequence (expected {len(tokens)})")
                parser.feed(len(tokens), columns[2], number)
                tokens.append((columns[1], number))
            mentions = parser.finish(end_line)
            kinds = {"typed" if m.type is not None else "numeric" for m in mentions}
            if len(kinds) > 1:
                raise DataFormatError(path, begin_line, f"document {name!r} mixes typed and numeric cluster ids")
            documents.append((name, tokens, mentions, begin_line, kinds.pop() if kinds else None))
        return documents

    def _document(self, path: Path, name: str, sentences: list[list[str]], mentions: list[Mention],
                  typed: bool) -> Document:
        document = Document(doc_id=name, sentences=sentences)
        sentence_ends = {}
        offsets = document.sentence_offsets() + [document.num_tokens]
        for index in range(len(sentences)):
            for token in range(offsets[index], offsets[index + 1]):
                sentence_ends[token] = offsets[index + 1]
        if typed:
            entities = set()
            for mention in mentions:
                if mention.end > sentence_ends[mention.start]:
                    if self.cross_sentence == "error":
                        raise DataFormatError(path, mention.line, f"mention [{mention.start}, {mention.end}) of cluster "
                                                                  f"{mention.entity} crosses a sentence boundary")
                    self.crossing_mentions += 1
                    continue
                entities.add(Span(mention.start, mention.end, mention.type))
            document.entities = sorted(entities)
        keep = typed if self.keep_singletons is None else self.keep_singletons
        clusters, repeated = mentions_to_clusters(mentions, keep)
        self.repeated_mentions += repeated
        document.clusters = [[Span(start, end) for start, end in cluster] for cluster in clusters]
        return document
