import pytest
import torch

from hmtl.config import TransformerConfig
from hmtl.errors import ConfigError
from hmtl.modules.embedder import MAX_SUBWORDS, UNK, GloveEmbedding, TransformerEmbedder, resolve_transformer_path


@pytest.fixture(scope="module")
def minilm():
    torch.manual_seed(0)
    return TransformerEmbedder(TransformerConfig(path="minilm", fine_tune=False, scalar_mix=False)).eval()


def test_glove_is_looked_up_lowercased_and_unknown_words_share_a_vector():
    glove = GloveEmbedding()
    ids = glove.ids(["The", "the", "qwzxv-not-a-word"])
    assert ids[0] == ids[1] != UNK and ids[2] == UNK
    vectors = glove(torch.tensor([ids]))
    assert torch.allclose(vectors[0, 0], vectors[0, 1]) and vectors.shape == (1, 3, 50)
    assert "vectors" not in glove.state_dict()  # the package ships them; checkpoints do not


def test_subwords_are_mean_pooled_to_words(minilm):
    subwords, owners = minilm.ids(["Lovelace", "wrote"])
    assert owners[0] == 0 and owners[-1] == 1 and len(subwords) == len(owners)
    features = {"subwords": subwords, "owners": owners, "length": 2}
    with torch.no_grad():
        states = minilm.layer_states([subwords])[-1]
        words = minilm([features], num_words=2)
    first_word = states[0, [i for i, o in enumerate(owners) if o == 0]].mean(0)
    assert torch.allclose(words[0, 0], first_word, atol=2e-2)  # the frozen model's outputs are cached in bf16


def test_frozen_transformer_outputs_are_computed_once(minilm, monkeypatch):
    subwords, owners = minilm.ids(["Grace", "Hopper"])
    features = {"subwords": subwords, "owners": owners, "length": 2}
    minilm.train()
    assert not minilm.model.training  # frozen: no dropout, so outputs can be cached
    first = minilm([features], num_words=2)
    assert "transformer_cache" in features
    monkeypatch.setattr(minilm, "layer_states", lambda *_: pytest.fail("the transformer ran again"))
    assert torch.equal(minilm([features], num_words=2), first)


def test_the_disk_state_cache_gives_back_what_memory_would(minilm):
    disk = TransformerEmbedder(TransformerConfig(path="minilm", scalar_mix=False, cache="disk")).eval()
    sentences = [["Grace", "Hopper", "wrote", "COBOL", "."], ["Ada", "lived", "."]]
    memory_features = [{"subwords": s, "owners": o, "length": len(t)} for t in sentences for s, o in [minilm.ids(t)]]
    disk_features = [dict(f) for f in memory_features]
    with torch.no_grad():
        first = disk(disk_features, num_words=5)
        assert torch.equal(first, minilm(memory_features, num_words=5))
        offset, shape = disk_features[1]["transformer_cache"]  # a place in the file, not a tensor
        assert shape == (minilm.model.config.num_hidden_layers + 1, 3, 384) and offset == 7 * 5 * 384 * 2
        assert disk.cache.end == 7 * 8 * 384 * 2  # bf16, seven layers, eight words
        assert torch.equal(disk(disk_features[::-1], num_words=5), first.flip(0))  # read back, in any order


@pytest.fixture(scope="module")
def tiny_roberta(tmp_path_factory):
    """A RoBERTa-style model folder with a byte-level BPE tokenizer built here, offline."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizerFast

    folder = tmp_path_factory.mktemp("roberta")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(["Ada Lovelace wrote the first program .", "Grace Hopper built COBOL in 1959 ."] * 20,
                            vocab_size=300, min_frequency=1, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(folder))
    tokenizer = RobertaTokenizerFast(str(folder / "vocab.json"), str(folder / "merges.txt"))
    tokenizer.save_pretrained(str(folder))
    config = RobertaConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=520, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    RobertaModel(config).save_pretrained(str(folder))
    return folder


def test_a_byte_level_bpe_gets_each_word_with_its_leading_space(tiny_roberta):
    embedder = TransformerEmbedder(TransformerConfig(path=str(tiny_roberta), scalar_mix=False)).eval()
    words = ["Ada", "Lovelace", "wrote", "COBOL", "."]
    pieces, owners = embedder.ids(words)
    expected = [embedder.tokenizer.encode(" " + word, add_special_tokens=False) for word in words]
    assert pieces == [piece for word in expected for piece in word]
    assert owners == [index for index, word in enumerate(expected) for _ in word]
    # loaded as it is saved (no add_prefix_space), the words would be pieces of one run-on word
    from transformers import AutoTokenizer

    plain = AutoTokenizer.from_pretrained(str(tiny_roberta))(words, is_split_into_words=True, add_special_tokens=False)
    assert plain["input_ids"] != pieces
    with torch.no_grad():
        states = embedder([{"subwords": pieces, "owners": owners, "length": len(words)}], num_words=len(words))
    assert states.shape == (1, 5, 32) and bool(states.abs().sum(-1).gt(0).all())


def test_long_inputs_run_in_overlapping_windows(minilm):
    ids = minilm.tokenizer.encode("the quick brown fox jumps over the lazy dog " * 90, add_special_tokens=False)
    assert len(ids) > MAX_SUBWORDS
    with torch.no_grad():
        long_states = minilm.layer_states([ids])[-1]
        first_window = minilm.layer_states([ids[:MAX_SUBWORDS]])[-1]
    assert long_states.shape[1] == len(ids)
    # positions well inside the first window come from the first window
    assert torch.allclose(long_states[0, :100], first_window[0, :100], atol=1e-4)
    assert long_states[0, -1].abs().sum() > 0  # the tail is filled from the last window


def test_unknown_transformer_folder_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match="embedder.transformer.path"):
        resolve_transformer_path(str(tmp_path / "nope"))


def test_document_context_is_read_but_only_the_sentence_is_returned(minilm):
    minilm.context = 4
    try:
        before, after = ["Ada", "Lovelace", "met", "Charles", "Babbage", "."], ["She", "wrote", "notes", "."]
        left, right = minilm.context_ids(before, after)
        assert left == minilm.ids(before)[0][-4:] and right == minilm.ids(after)[0][:4]
        subwords, _ = minilm.ids(["He", "built", "engines"])
        with torch.no_grad():
            alone = minilm.layer_states([subwords, subwords])[-1]
            in_context = minilm.layer_states([subwords, subwords], [(left, right), ([], [])])[-1]
            joined = minilm.layer_states([left + subwords + right])[-1]
        assert in_context.shape == alone.shape
        assert torch.allclose(in_context[0], joined[0, len(left) : len(left) + len(subwords)], atol=1e-4)
        assert torch.allclose(in_context[1], alone[1], atol=1e-4)  # no context: the sentence alone
        assert not torch.allclose(in_context[0], alone[0], atol=1e-2)  # the context changed the states
    finally:
        minilm.context = 0
    assert minilm.context_ids(["a"], ["b"]) == ([], [])
