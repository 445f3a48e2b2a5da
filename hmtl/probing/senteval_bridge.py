"""Run the probing tasks through SentEval itself (``senteval.engine.SE``), one batcher per layer.

SentEval (facebookresearch/SentEval) is not on PyPI; install it from its repository. Its scikit-learn classifier
path is used (``usepytorch=False``): its PyTorch path calls ``.cuda()`` and ``inspect.getargspec`` and breaks on
current Python. SentEval reads ``<task_path>/probing/<file>`` (the file names of ``hmtl.probing.tasks.TASKS``), so a
folder holding the files directly is linked under a temporary ``probing/`` folder.

The batching logic (``LayerBatchers``) does not import SentEval. ``preload(sentences)`` pools every layer for the
distinct sentences of all the tasks at once, through ``encode_dataset`` with the same sentences, pooling and model
identity as ``--backend hmtl`` (``hmtl.probing.run.distinct_sentences``), so both backends read and write the same
HDF5 cache group and the second to run encodes nothing. SentEval's ``prepare(params, samples)`` then finds every
sample already there; only a sample ``preload`` did not see is encoded (all of the task's sentences, on their own
key). The batcher of a layer looks its sentences up.
"""
from __future__ import annotations

import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from hmtl.probing.errors import ProbingError, SentEvalNotInstalledError
from hmtl.probing.extract import EncoderFn, cache_key, encode_dataset
from hmtl.probing.tasks import ProbingTask

INSTALL_HINT = ("SentEval is not installed (it is not on PyPI): pip install "
                "git+https://github.com/facebookresearch/SentEval.git, or use --backend hmtl, which runs the same "
                "protocol without it")


def import_senteval():
    """The ``senteval.engine`` module, or a ``SentEvalNotInstalledError`` saying how to get it."""
    try:
        import senteval.engine as engine
    except ImportError as error:
        raise SentEvalNotInstalledError(f"{INSTALL_HINT} ({error})") from None
    return engine


class LayerBatchers:
    """SentEval ``prepare`` / ``batcher`` functions over the layers of one encoder."""

    def __init__(self, encoder_fn: EncoderFn, layers: list[str], pooling: str = "mean", batch_size: int = 64,
                 cache_path: str | Path | None = None, model_id: str = "", progress: bool = False):
        self.encoder_fn, self.layers, self.pooling = encoder_fn, list(layers), pooling
        self.batch_size, self.cache_path, self.model_id, self.progress = batch_size, cache_path, model_id, progress
        self._key: str | None = None
        self._index: dict[tuple[str, ...], int] = {}
        self._vectors: dict[str, np.ndarray] = {}

    def preload(self, sentences: list[list[str]]) -> None:
        """Pool every layer for ``sentences`` (through the cache); ``prepare`` then only looks samples up."""
        self._load([list(s) for s in sentences], desc="encoding")

    def prepare(self, params, samples: list[list[str]]) -> None:
        """SentEval calls this with all of a task's sentences before batching them: nothing to do when they were
        preloaded (or seen by the previous call), else they are encoded (once per distinct set)."""
        if self._vectors and all(tuple(s) in self._index for s in samples):
            return
        self._load([list(s) for s in samples], desc="encoding for SentEval")

    def _load(self, samples: list[list[str]], desc: str) -> None:
        key = cache_key(samples, self.pooling, self.model_id)
        if key == self._key:
            return
        vectors = encode_dataset(self.encoder_fn, samples, self.layers, self.pooling, self.batch_size,
                                 self.cache_path, self.model_id, self.progress, desc=desc)
        self._key = key
        self._index = {}
        for i, sentence in enumerate(samples):
            self._index.setdefault(tuple(sentence), i)
        self._vectors = {layer: matrix.numpy() for layer, matrix in vectors.items()}

    def batcher(self, layer: str) -> Callable[[object, list[list[str]]], np.ndarray]:
        if layer not in self.layers:
            raise ProbingError(f"layer {layer!r} was not requested (layers: {', '.join(self.layers)})")

        def batch_vectors(params, batch: list[list[str]]) -> np.ndarray:
            rows = [self._index.get(tuple(sentence)) for sentence in batch]
            if self._vectors and all(row is not None for row in rows):
                return self._vectors[layer][np.array(rows, dtype=np.int64)]
            fresh = encode_dataset(self.encoder_fn, [list(s) for s in batch], [layer], self.pooling,
                                   self.batch_size, None, self.model_id, progress=False)
            return fresh[layer].numpy()

        return batch_vectors


@contextmanager
def senteval_task_root(task_path: str | Path, tasks: list[ProbingTask]) -> Iterator[Path]:
    """A folder ``R`` such that SentEval finds ``R/probing/<file>`` for every task."""
    root = Path(task_path)
    if all((root / "probing" / task.file).is_file() for task in tasks):
        yield root
        return
    missing = [task.file for task in tasks if not (root / task.file).is_file()]
    if missing:
        raise ProbingError(f"SentEval needs the uncompressed probing files; not found in {root} nor {root / 'probing'}: "
                           f"{', '.join(missing)}")
    if root.name == "probing":
        yield root.parent
        return
    with tempfile.TemporaryDirectory(prefix="hmtl-senteval-") as tmp:
        (Path(tmp) / "probing").symlink_to(root.resolve(), target_is_directory=True)
        yield Path(tmp)


def senteval_params(task_root: Path, classifier: str = "logreg", seed: int = 1111, batch_size: int = 64) -> dict:
    """SentEval's parameters for its probing tasks with the scikit-learn logistic regression."""
    if classifier != "logreg":
        raise ProbingError(f"--backend senteval runs SentEval's scikit-learn path, which has logistic regression only; "
                           f"classifier {classifier!r} needs --backend hmtl")
    return {"task_path": str(task_root), "usepytorch": False, "kfold": 10, "seed": seed, "batch_size": batch_size,
            "classifier": {"nhid": 0, "optim": "adam", "batch_size": 64, "tenacity": 5, "epoch_size": 4}}


def run_senteval(encoder_fn: EncoderFn, layers: list[str], tasks: list[ProbingTask], task_path: str | Path,
                 pooling: str = "mean", classifier: str = "logreg", seed: int = 1111, batch_size: int = 64,
                 cache_path: str | Path | None = None, model_id: str = "", progress: bool = True,
                 engine=None, log: Callable[[str], None] | None = print,
                 sentences: list[list[str]] | None = None) -> dict[str, dict[str, dict]]:
    """``{layer: {task: SentEval's result}}``: for each task, one ``SE(params, batcher_of_layer, prepare)`` per
    layer. With ``sentences`` (the tasks' distinct sentences, ``hmtl.probing.run.distinct_sentences``) every layer
    is pooled for all of them first, from or into the vector cache shared with ``--backend hmtl``; without, each
    task's sentences are pooled in its first ``prepare``."""
    engine = engine or import_senteval()
    batchers = LayerBatchers(encoder_fn, layers, pooling, batch_size, cache_path, model_id, progress)
    if sentences is not None:
        batchers.preload(sentences)
    results: dict[str, dict[str, dict]] = {layer: {} for layer in layers}
    with senteval_task_root(task_path, tasks) as root:
        params = senteval_params(root, classifier, seed, batch_size)
        for task in tasks:
            for layer in layers:
                evaluation = engine.SE(dict(params), batchers.batcher(layer), batchers.prepare)
                result = evaluation.eval([task.name])
                result = result.get(task.name, result) if isinstance(result, dict) else result
                results[layer][task.name] = {k: (int(result[k]) if k.startswith("n") else float(result[k]))
                                             for k in ("devacc", "acc", "ndev", "ntest") if k in result}
                if log:
                    log(f"  {task.name:<22} {layer:<16} acc {results[layer][task.name].get('acc')}")
    return results
