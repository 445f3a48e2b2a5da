"""Sentence vectors from an encoder's layers: masked mean/max pooling of token states, cached in HDF5.

The encoder is anything with the protocol ``encoder_fn(list_of_token_lists) -> (layers, mask)`` where ``layers`` maps
a layer name to token states ``FloatTensor (B, T, D)`` and ``mask`` is ``BoolTensor (B, T)``, True on real tokens.
``model_encoder(model)`` adapts a trained ``HierarchicalModel`` (``encode_layers``); the baselines in
``hmtl.probing.baselines`` follow the same protocol.
"""
from __future__ import annotations

import hashlib
import inspect
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from hmtl.probing.errors import ProbingError, UnknownLayerError

EncoderFn = Callable[[list[list[str]]], tuple[dict[str, torch.Tensor], torch.Tensor]]
POOLINGS = ("mean", "max")


def pool(states: torch.Tensor, mask: torch.Tensor, pooling: str = "mean") -> torch.Tensor:
    """``(B, T, D)`` token states -> ``(B, D)`` over the tokens where ``mask`` is True; a row without any is zeros."""
    mask = mask.to(torch.bool)
    if states.dim() != 3 or mask.shape != states.shape[:2]:
        raise ProbingError(f"token states {tuple(states.shape)} and mask {tuple(mask.shape)} do not match: "
                           "expected (batch, tokens, dim) and (batch, tokens)")
    states = states.float()
    m = mask.unsqueeze(-1)
    if pooling == "mean":
        total = (states * m).sum(dim=1)
        return total / m.sum(dim=1).clamp(min=1)
    if pooling == "max":
        filled = states.masked_fill(~m, float("-inf")).amax(dim=1)
        return torch.where(mask.any(dim=1, keepdim=True), filled, torch.zeros_like(filled))
    raise ProbingError(f"unknown pooling {pooling!r}; known: {', '.join(POOLINGS)}")


def cache_key(sentences: list[list[str]], pooling: str, model_id: str) -> str:
    """A hash of the sentences, the pooling and the model's identity: the HDF5 group the vectors are stored under."""
    digest = hashlib.sha256()
    digest.update(f"{model_id}\x1d{pooling}\x1d{len(sentences)}\x1d".encode())
    for sentence in sentences:
        digest.update("\x1f".join(sentence).encode())
        digest.update(b"\x1e")
    return digest.hexdigest()[:40]


def _dataset_name(layer: str) -> str:
    return layer.replace("/", "|")


def _read_cache(cache_path: Path, key: str, layers: list[str]) -> dict[str, torch.Tensor]:
    import h5py

    found: dict[str, torch.Tensor] = {}
    if not cache_path.exists():
        return found
    try:
        with h5py.File(cache_path, "r") as cache:
            group = cache.get(key)
            if group is None:
                return found
            for layer in layers:
                name = _dataset_name(layer)
                if name in group and group[name].attrs.get("complete", False):
                    found[layer] = torch.from_numpy(group[name][()])
    except OSError as error:
        raise ProbingError(f"cannot read the vector cache {cache_path}: {error} (delete it to start over)") from None
    return found


def _write_cache(cache_path: Path, key: str, vectors: dict[str, torch.Tensor], attrs: dict) -> None:
    import h5py

    cache_path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(cache_path, "a") as cache:
        group = cache.require_group(key)
        for name, value in attrs.items():
            group.attrs[name] = value
        for layer, matrix in vectors.items():
            name = _dataset_name(layer)
            if name in group:
                del group[name]
            dataset = group.create_dataset(name, data=matrix.numpy(), compression="gzip", compression_opts=1)
            dataset.attrs["layer"] = layer
            dataset.attrs["complete"] = True


def encode_dataset(encoder_fn: EncoderFn, sentences: list[list[str]], layers: list[str] | None = None,
                   pooling: str = "mean", batch_size: int = 64, cache_path: str | Path | None = None,
                   model_id: str = "", progress: bool = True, desc: str = "encoding") -> dict[str, torch.Tensor]:
    """Pooled sentence vectors ``{layer: FloatTensor (N, D)}`` in the order of ``sentences``.

    ``layers`` None means every layer the encoder returns. With ``cache_path`` the vectors are stored in HDF5 under
    ``cache_key(sentences, pooling, model_id)``, one dataset per layer, and a later call with the same sentences,
    pooling and model identity reads them instead of encoding again; ``model_id`` must change when the weights do.
    """
    if pooling not in POOLINGS:
        raise ProbingError(f"unknown pooling {pooling!r}; known: {', '.join(POOLINGS)}")
    if batch_size < 1:
        raise ProbingError(f"batch_size must be positive, got {batch_size}")
    cache_path = Path(cache_path) if cache_path else None
    key = cache_key(sentences, pooling, model_id)
    cached = _read_cache(cache_path, key, layers) if cache_path and layers else {}
    if layers is not None and len(cached) == len(layers):
        return {layer: cached[layer] for layer in layers}

    wanted = None if layers is None else [layer for layer in layers if layer not in cached]
    order = sorted(range(len(sentences)), key=lambda i: -len(sentences[i]))  # similar lengths batch together
    result: dict[str, torch.Tensor] = {}
    batches = range(0, len(order), batch_size)
    for start in tqdm(batches, desc=desc, unit="batch", disable=not progress, leave=False):
        index = order[start:start + batch_size]
        with torch.inference_mode():
            states, mask = encoder_fn([sentences[i] for i in index])
        if wanted is None:
            wanted = list(states)
        missing = [layer for layer in wanted if layer not in states]
        if missing:
            raise UnknownLayerError(f"unknown layer(s) {', '.join(missing)}; the encoder has: {', '.join(states)}")
        for layer in wanted:
            pooled = pool(states[layer], mask, pooling).detach().to("cpu", torch.float32)
            if pooled.shape[0] != len(index):
                raise ProbingError(f"layer {layer}: the encoder returned {pooled.shape[0]} rows for {len(index)} sentences")
            if layer not in result:
                result[layer] = torch.zeros(len(sentences), pooled.shape[1])
            result[layer][torch.tensor(index)] = pooled
    if wanted is None:  # no sentences at all
        wanted = list(layers or [])
    for layer in wanted:
        result.setdefault(layer, torch.zeros(0, 0))
    if cache_path and result:
        _write_cache(cache_path, key, {layer: result[layer] for layer in wanted},
                     {"pooling": pooling, "model_id": model_id, "sentences": len(sentences)})
    result.update(cached)
    names = layers if layers is not None else wanted
    return {layer: result[layer] for layer in names}


def model_encoder(model, transformer_layers: bool = False) -> EncoderFn:
    """The protocol for a model with ``encode_layers(sentences)``: it may return ``(layers, mask)`` itself, or only
    ``layers`` with the mask from ``model.token_mask(sentences)``. ``transformer_layers`` asks the model for each
    transformer layer too (``transformer_0`` ...), where its ``encode_layers`` takes that argument."""
    kwargs = {"transformer_layers": True} if transformer_layers else {}
    if transformer_layers and "transformer_layers" not in inspect.signature(model.encode_layers).parameters:
        raise ProbingError("this model's encode_layers has no transformer_layers option")

    def encode(sentences: list[list[str]]):
        output = model.encode_layers(sentences, **kwargs)
        if isinstance(output, tuple):
            layers, mask = output
        else:
            layers, mask = output, model.token_mask(sentences)
        return layers, mask

    return encode


def encoder_layers(encoder_fn: EncoderFn) -> list[str]:
    """The layer names an encoder produces, in its order (asks it for one short sentence)."""
    with torch.inference_mode():
        layers, _ = encoder_fn([["probe", "."]])
    return list(layers)
