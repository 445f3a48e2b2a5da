"""Column corpora (CoNLL-2003 and the like): one token per line, blank lines between sentences,
``-DOCSTART-`` lines between documents; the entity column may use IOB1, IOB2 or BIOES."""
from __future__ import annotations

from pathlib import Path

from hmtl.data.document import Document
from hmtl.data.readers.base import Reader, open_text
from hmtl.data.tagging import split_tag, tags_to_spans
from hmtl.errors import DataFormatError
from hmtl.registry import READERS


@READERS.register("conll2003")
class ColumnReader(Reader):
    """Options: ``tag_column`` (default the last), ``extra_columns`` naming other columns kept as token layers
    (CoNLL-2003: pos, chunk), ``sentences_per_document`` for files without ``-DOCSTART-`` lines."""

    def __init__(self, dataset: str = "", tag_column: int = -1, extra_columns: dict[str, int] | None = None,
                 sentences_per_document: int = 100):
        super().__init__(dataset)
        self.tag_column = tag_column
        self.extra_columns = {"pos": 1, "chunk": 2} if extra_columns is None else extra_columns
        self.sentences_per_document = sentences_per_document

    def _read(self, path: Path) -> list[Document]:
        documents: list[Document] = []
        sentences: list[list[tuple[int, list[str]]]] = []
        current: list[tuple[int, list[str]]] = []
        width = None
        explicit_documents = False

        def close_sentence() -> None:
            nonlocal current
            if current:
                sentences.append(current)
                current = []
                if not explicit_documents and len(sentences) == self.sentences_per_document:
                    close_document()

        def close_document() -> None:
            nonlocal sentences
            close_sentence()
            if sentences:
                documents.append(self._document(path, f"{path.name}#{len(documents)}", sentences))
                sentences = []

        with open_text(path) as lines:
            for number, line in enumerate(lines, start=1):
                line = line.rstrip("\r\n")
                if not line.strip():
                    close_sentence()
                    continue
                columns = line.split()
                if columns[0] == "-DOCSTART-":
                    explicit_documents = True
                    close_document()
                    continue
                if width is None:
                    width = len(columns)
                    if width < 2:
                        raise DataFormatError(path, number, f"expected a token and a tag column, found {line!r}")
                elif len(columns) != width:
                    raise DataFormatError(path, number, f"expected {width} columns like the lines before, found {len(columns)}: {line!r}")
                try:
                    split_tag(columns[self.tag_column])
                except ValueError as error:
                    raise DataFormatError(path, number, str(error)) from None
                current.append((number, columns))
        close_document()
        return documents

    def _document(self, path: Path, doc_id: str, sentences: list[list[tuple[int, list[str]]]]) -> Document:
        document = Document(doc_id=doc_id, sentences=[[columns[0] for _, columns in s] for s in sentences])
        offset = 0
        for sentence in sentences:
            tags = [columns[self.tag_column] for _, columns in sentence]
            document.entities.extend(span.__class__(span.start + offset, span.end + offset, span.label) for span in tags_to_spans(tags))
            offset += len(sentence)
        width = len(sentences[0][0][1])
        for name, column in self.extra_columns.items():
            if column < width - 1:
                document.token_tags[name] = [[columns[column] for _, columns in s] for s in sentences]
        return document
