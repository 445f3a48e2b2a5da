"""What every corpus reader shares: opening plain or gzipped text and the ``read(path) -> list[Document]`` contract."""
from __future__ import annotations

import gzip
from pathlib import Path
from typing import IO

from hmtl.data.document import Document
from hmtl.errors import DataFormatError


def open_text(path: str | Path) -> IO[str]:
    """Open a corpus file for reading, transparently gunzipping ``*.gz``; a missing file is a clear error."""
    path = Path(path)
    if not path.exists():
        raise DataFormatError(path, None, "file not found")
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


class Reader:
    """Turns one corpus file (or folder) into ``Document``s tagged with ``dataset``.

    Subclasses implement ``_read``; ``read`` checks the result so an empty corpus or an annotation pointing
    outside its document stops here, naming the file, instead of crashing mid-training.
    """

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
