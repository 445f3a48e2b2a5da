"""What every corpus reader shares: opening plain or gzipped text and the ``read(path) -> list[Document]`` contract."""
from __future__ import annotations

import gzip
import os
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar, Iterator

from hmtl.config import DATA_DIR_VARIABLE
from hmtl.data.document import Document
from hmtl.errors import DataFormatError

BOM = "\ufeff"


class CorpusFile:
    """A corpus file's lines, with every way reading it can fail turned into a ``DataFormatError`` naming the file
    and line: a byte that is not UTF-8, a truncated or fake ``.gz``. Lines are decoded one by one (so the line named
    is the line with the bad byte) and end in ``\\n``; a UTF-8 byte-order mark is dropped. ``exact=True`` keeps
    the text as stored (``\\r`` and a mark included), for formats whose offsets count every character."""

    def __init__(self, path: Path, exact: bool = False):
        self.path = path
        self.exact = exact
        self.line = 0
        self.handle = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")

    def __enter__(self) -> "CorpusFile":
        return self

    def __exit__(self, *_) -> None:
        self.handle.close()

    def __iter__(self) -> Iterator[str]:
        with self._errors():
            for raw in self.handle:
                self.line += 1
                yield self._decode(raw)

    def read(self) -> str:
        with self._errors():
            return self._decode(self.handle.read())

    def _decode(self, raw: bytes) -> str:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            line = self.line or raw.count(b"\n", 0, error.start) + 1
            raise DataFormatError(self.path, line, f"not UTF-8 text (byte {raw[error.start:error.start + 1]!r} at "
                                                   "this line); convert the file to UTF-8") from None
        if self.exact:
            return text
        if self.line <= 1:
            text = text.removeprefix(BOM)
        return text.replace("\r\n", "\n").replace("\r", "\n")

    @contextmanager
    def _errors(self):
        try:
            yield
        except gzip.BadGzipFile:
            raise DataFormatError(self.path, None, "not a gzip file, though its name ends in .gz") from None
        except (EOFError, zlib.error):
            raise DataFormatError(self.path, self.line + 1, "the gzip file is truncated or damaged") from None


def open_text(path: str | Path, exact: bool = False) -> CorpusFile:
    """Open a corpus file for reading, transparently gunzipping ``*.gz``; a missing file, a folder, or a file that
    cannot be decoded is a clear error naming it."""
    path = Path(path)
    if not path.exists():
        hint = ""
        if DATA_DIR_VARIABLE not in os.environ and path.parts[:1] == ("data",):
            hint = (f" (${{{DATA_DIR_VARIABLE}}} is not set, so it means 'data/': run scripts/data_setup.sh or "
                    f"set {DATA_DIR_VARIABLE} to your corpus folder)")
        raise DataFormatError(path, None, f"file not found{hint}")
    if path.is_dir():
        raise DataFormatError(path, None, "is a folder; expected a corpus file")
    return CorpusFile(path, exact)


class Reader:
    """Turns one corpus file (or folder) into ``Document``s tagged with ``dataset``.

    Subclasses implement ``_read``; ``read`` checks the result so an empty corpus or an annotation pointing
    outside its document stops here, naming the file, instead of crashing mid-training.
    """

    # the meaning of each keyword option (``reader_options``), for docs/CONFIG.md (scripts/config_reference.py)
    option_help: ClassVar[dict[str, str]] = {}

    def __init__(self, dataset: str = ""):
        self.dataset = dataset

    def read(self, path: str | Path) -> list[Document]:
        documents = self._read(Path(path))
        if not documents:
            raise DataFormatError(path, None, "no documents found (empty corpus)")
        for document in documents:
            document.dataset = self.dataset
            try:
                document.validate()
            except ValueError as error:
                raise DataFormatError(path, None, str(error)) from None
        return documents

    def _read(self, path: Path) -> list[Document]:
        raise NotImplementedError
