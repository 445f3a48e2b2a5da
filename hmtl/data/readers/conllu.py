"""CoNLL-U treebanks (Universal Dependencies: EWT, GUM, ...): ten tab-separated columns per word,
``#`` comment lines, a blank line after each sentence.

Documents start at ``# newdoc`` comments (``# newdoc id = X`` names them); a file without any is one document.
Multiword-token ranges (``1-2``) and empty nodes (``1.1``) are skipped: only syntactic words are kept, so every
token layer lines up with the word sequence. The token layers are ``upos``, ``xpos``, ``lemma``, ``feats``,
``head`` (the head's 1-based word index as a string, ``"0"`` for the root) and ``deprel``.
"""
from __future__ import annotations

import re
from pathlib import Path

from hmtl.data.document import Document
from hmtl.data.readers.base import Reader, open_text
from hmtl.errors import DataFormatError
from hmtl.registry import READERS

COLUMNS = ("id", "form", "lemma", "upos", "xpos", "feats", "head", "deprel", "deps", "misc")
LAYERS = ("upos", "xpos", "lemma", "feats", "head", "deprel")
_RANGE = re.compile(r"^\d+-\d+$")
_EMPTY_NODE = re.compile(r"^\d+\.\d+$")
_NEWDOC = re.compile(r"^#\s*newdoc(?:\s+id\s*=\s*(.*))?\s*$")


@READERS.register("conllu")
class ConlluReader(Reader):
    """Reads one ``.conllu`` / ``.conllu.gz`` file, or every such file of a folder (sorted by name)."""

    option_help = {"layers": f"the token layers to keep, of {', '.join(LAYERS)} (default: all)"}

    def __init__(self, dataset: str = "", layers: tuple[str, ...] | list[str] | None = None):
        super().__init__(dataset)
        self.layers = tuple(LAYERS if layers is None else layers)
        unknown = [name for name in self.layers if name not in LAYERS]
        if unknown:
            raise ValueError(f"conllu reader: unknown token layer(s) {unknown}; known: {', '.join(LAYERS)}")

    def _read(self, path: Path) -> list[Document]:
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.name.endswith((".conllu", ".conllu.gz")))
            if not files:
                raise DataFormatError(path, None, "folder holds no .conllu or .conllu.gz file")
            return [document for file in files for document in self._read_file(file)]
        return self._read_file(path)

    def _read_file(self, path: Path) -> list[Document]:
        documents: list[Document] = []
        doc_id: str | None = None
        sentences: list[list[list[str]]] = []  # sentences of word rows (10 columns)
        current: list[list[str]] = []  # each row also carries its line number as an 11th item

        def close_sentence() -> None:
            nonlocal current
            if current:
                self._check_heads(path, current)
                sentences.append(current)
                current = []

        def close_document() -> None:
            nonlocal sentences
            if sentences:
                name = doc_id if doc_id else f"{path.name}#{len(documents)}"
                documents.append(self._document(name, sentences))
                sentences = []

        with open_text(path) as lines:
            for number, line in enumerate(lines, start=1):
                line = line.rstrip("\r\n")
                if not line.strip():
                    close_sentence()
                    continue
                if line.startswith("#"):
                    match = _NEWDOC.match(line)
                    if match:
                        if current:
                            raise DataFormatError(path, number, "'# newdoc' inside a sentence (a blank line is missing)")
                        close_document()
                        doc_id = (match.group(1) or "").strip() or None
                    continue
                columns = line.split("\t")
                if len(columns) != 10:
                    raise DataFormatError(path, number, f"expected 10 tab-separated CoNLL-U columns, found {len(columns)}: {line!r}")
                word_id = columns[0]
                if _RANGE.match(word_id) or _EMPTY_NODE.match(word_id):
                    continue
                if not word_id.isdigit():
                    raise DataFormatError(path, number, f"bad word ID {word_id!r} (expected an integer, a range 1-2 or an empty node 1.1)")
                if int(word_id) != len(current) + 1:
                    raise DataFormatError(path, number, f"word ID {word_id} out of sequence (expected {len(current) + 1}; is a blank line missing?)")
                if not columns[1]:
                    raise DataFormatError(path, number, "empty FORM column")
                if not columns[6].isdigit():
                    raise DataFormatError(path, number, f"bad HEAD {columns[6]!r} (expected a word index, 0 for the root)")
                current.append(columns + [str(number)])
            close_sentence()
        close_document()
        return documents

    @staticmethod
    def _check_heads(path: Path, rows: list[list[str]]) -> None:
        for row in rows:
            if int(row[6]) > len(rows):
                raise DataFormatError(path, int(row[10]), f"HEAD {row[6]} points past the sentence's {len(rows)} words")

    def _document(self, doc_id: str, sentences: list[list[list[str]]]) -> Document:
        document = Document(doc_id=doc_id, sentences=[[row[1] for row in rows] for rows in sentences])
        for name in self.layers:
            column = COLUMNS.index(name)
            document.token_tags[name] = [[row[column] for row in rows] for rows in sentences]
        return document


def parse_feats(feats: str) -> dict[str, str]:
    """``"Number=Sing|Person=3"`` -> ``{"Number": "Sing", "Person": "3"}``; ``"_"`` -> ``{}``."""
    if not feats or feats == "_":
        return {}
    result = {}
    for item in feats.split("|"):
        key, _, value = item.partition("=")
        result[key] = value
    return result
