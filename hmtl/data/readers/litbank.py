"""LitBank (Bamman et al. 2019, 2020): nested ACE-typed entities and coreference over 100 literary texts.

The reader takes the LitBank folder (holding ``entities/tsv/``, ``coref/conll/`` and
``splits/litbank_tenfold_splits/``) in one of three ways:

- ``path`` = the folder with options ``fold`` (0-9, default 0) and ``split`` (``train``, ``dev``/``validation``,
  ``test``): the documents of that fold's ``<split>.ids``;
- ``path`` = the folder and no ``split``: all documents;
- ``path`` = an ``.ids`` file itself (``litbank/splits/litbank_tenfold_splits/0/train.ids``), which lets a config
  give each split its own path with one set of reader options.

One ``Document`` per text:

- tokens and sentences from ``entities/tsv/<doc>.tsv`` (one token per line, blank line between sentences);
- ``entities``: the spans of every BIO layer of that file (layer 1 is the innermost; nested spans allowed, a
  span with the same type in two layers kept once);
- ``clusters``: from ``coref/conll/<doc>.conll.gz`` (CoNLL-2012 columns, cluster brackets in the last column,
  the version scored with the reference scorer in the LREC paper, where COP- and APPOS-linked mentions are
  separate chains), singletons included. Its tokens and sentence breaks must equal the tsv's. Coreference is
  document-level, so a mention may span a sentence break (unlike an entity, which cannot by construction).

Errors (``DataFormatError`` with file and line): a missing file, an unknown tag, tokens or sentence breaks that
differ between the two files, malformed or unclosed cluster brackets, an unknown ``split`` or ``fold``.
"""
from __future__ import annotations

import logging
from pathlib import Path

from hmtl.data.document import Document, Span
from hmtl.data.readers.base import Reader, open_text
from hmtl.data.readers.coref_conll import BracketParser, mentions_to_clusters
from hmtl.data.tagging import tags_to_spans
from hmtl.errors import ConfigError, DataFormatError
from hmtl.registry import READERS

logger = logging.getLogger(__name__)
SPLIT_NAMES = {"train": "train", "dev": "dev", "validation": "dev", "test": "test"}
SPLITS_DIR = Path("splits") / "litbank_tenfold_splits"


def find_root(path: Path) -> Path:
    for folder in [path, *path.parents]:
        if (folder / "entities" / "tsv").is_dir():
            return folder
    raise DataFormatError(path, None, "no LitBank folder (with entities/tsv/) here or above")


def read_entity_tsv(path: Path) -> tuple[list[list[str]], list[Span], list[int]]:
    """Sentences, entities (document offsets, all layers) and the first line number of each sentence."""
    sentences: list[list[str]] = []
    layers_by_sentence: list[list[list[str]]] = []
    first_lines: list[int] = []
    tokens: list[str] = []
    columns_by_token: list[list[str]] = []
    with open_text(path) as lines:
        for number, line in enumerate(lines, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                if tokens:
                    sentences.append(tokens)
                    layers_by_sentence.append(columns_by_token)
                    tokens, columns_by_token = [], []
                continue
            columns = line.split("\t")
            while len(columns) > 1 and columns[-1] == "":
                columns.pop()
            if len(columns) < 2:
                raise DataFormatError(path, number, f"expected a token and BIO layer columns, found {line!r}")
            if not tokens:
                first_lines.append(number)
            tokens.append(columns[0])
            columns_by_token.append(columns[1:])
            try:
                tags_to_spans(columns[1:])  # validates every tag of the line
            except ValueError as error:
                raise DataFormatError(path, number, str(error)) from None
    if tokens:
        sentences.append(tokens)
        layers_by_sentence.append(columns_by_token)
    entities: set[Span] = set()
    offset = 0
    for sentence, columns in zip(sentences, layers_by_sentence):
        depth = max(len(c) for c in columns)
        for layer in range(depth):
            tags = [c[layer] if layer < len(c) else "O" for c in columns]
            entities.update(Span(s.start + offset, s.end + offset, s.label) for s in tags_to_spans(tags))
        offset += len(sentence)
    return sentences, sorted(entities), first_lines


@READERS.register("litbank")
class LitBankReader(Reader):
    """The LitBank folder, or a split's ``.ids`` file: nested ACE entities and coreference (see the module docstring)."""

    option_help = {
        "fold": "the cross-validation fold (0-9), when the path is the LitBank folder",
        "split": "train, dev, validation or test of that fold, when the path is the LitBank folder; null: every document",
        "coref": "read the coreference clusters",
    }

    def __init__(self, dataset: str = "", fold: int = 0, split: str | None = None, coref: bool = True):
        super().__init__(dataset)
        if split is not None and split not in SPLIT_NAMES:
            raise ConfigError(f"reader option split must be one of {', '.join(SPLIT_NAMES)}, not {split!r}")
        self.fold, self.split, self.coref = fold, split, coref
        self.repeated_mentions = 0

    def document_ids(self, path: Path) -> tuple[Path, list[tuple[str, Path, int | None]]]:
        """The LitBank root and ``(document id, file naming it, line)`` for each document to read."""
        if path.is_dir():
            root = find_root(path)
            if self.split is None:
                tsv = sorted((root / "entities" / "tsv").glob("*.tsv"))
                return root, [(p.stem, p, None) for p in tsv]
            ids_path = root / SPLITS_DIR / str(self.fold) / f"{SPLIT_NAMES[self.split]}.ids"
            if not ids_path.exists():
                raise DataFormatError(ids_path, None, f"no split file for fold {self.fold!r}, split {self.split!r}")
        elif path.suffix == ".ids":
            root, ids_path = find_root(path.parent), path
        else:
            raise DataFormatError(path, None, "expected the LitBank folder or a split .ids file")
        ids = []
        with open_text(ids_path) as lines:
            for number, line in enumerate(lines, start=1):
                name = line.strip()
                if name:
                    ids.append((name[: -len(".tsv")] if name.endswith(".tsv") else name, ids_path, number))
        return root, ids

    def _read(self, path: Path) -> list[Document]:
        root, ids = self.document_ids(path)
        self.repeated_mentions = 0
        documents = []
        for doc_id, listed_in, line in ids:
            tsv_path = root / "entities" / "tsv" / f"{doc_id}.tsv"
            if not tsv_path.exists():
                raise DataFormatError(listed_in, line, f"document {doc_id!r}: {tsv_path} not found")
            sentences, entities, _ = read_entity_tsv(tsv_path)
            document = Document(doc_id=doc_id, sentences=sentences, entities=entities)
            if self.coref:
                conll_path = root / "coref" / "conll" / f"{doc_id}.conll.gz"
                if not conll_path.exists() and conll_path.with_suffix("").exists():
                    conll_path = conll_path.with_suffix("")
                if not conll_path.exists():
                    raise DataFormatError(listed_in, line, f"document {doc_id!r}: {conll_path} not found")
                document.clusters = self._read_clusters(conll_path, sentences)
            documents.append(document)
        if self.repeated_mentions:
            logger.info("%s: %d mentions are in two clusters: kept in the first only", path, self.repeated_mentions)
        return documents

    def _read_clusters(self, path: Path, sentences: list[list[str]]) -> list[list[Span]]:
        parser = BracketParser(path)
        token = 0  # document-level index
        sentence, in_sentence = 0, 0
        last_line = 0
        with open_text(path) as lines:
            for number, line in enumerate(lines, start=1):
                last_line = number
                line = line.rstrip("\r\n")
                if line.startswith("#"):
                    continue
                if not line.strip():
                    if in_sentence:
                        if in_sentence != len(sentences[sentence]):
                            raise DataFormatError(path, number, f"sentence {sentence} ends after {in_sentence} tokens; "
                                                                f"the entity file has {len(sentences[sentence])}")
                        sentence, in_sentence = sentence + 1, 0
                    continue
                columns = line.split("\t")
                if len(columns) < 5:
                    raise DataFormatError(path, number, f"expected CoNLL-2012 columns, found {len(columns)}: {line!r}")
                if sentence >= len(sentences) or in_sentence >= len(sentences[sentence]):
                    raise DataFormatError(path, number, f"token {columns[3]!r} beyond the entity file's sentence "
                                                        f"{sentence} (the files must hold the same tokens)")
                expected = sentences[sentence][in_sentence]
                if columns[3] != expected or columns[2] != str(in_sentence):
                    raise DataFormatError(path, number, f"token {columns[2]} {columns[3]!r} does not match the entity "
                                                        f"file's token {in_sentence} {expected!r} of sentence {sentence}")
                parser.feed(token, columns[-1], number)
                token, in_sentence = token + 1, in_sentence + 1
        if in_sentence:
            sentence += 1
        if sentence != len(sentences) or in_sentence not in (0, len(sentences[sentence - 1])):
            raise DataFormatError(path, last_line, f"{sentence} sentences here, {len(sentences)} in the entity file")
        clusters, repeated = mentions_to_clusters(parser.finish(), keep_singletons=True)
        self.repeated_mentions += repeated
        return [[Span(start, end) for start, end in cluster] for cluster in clusters]
