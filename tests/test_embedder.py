import pytest
import torch

from hmtl.config import MAX_WINDOW_SUBWORDS as MAX_SUBWORDS
from hmtl.config import TransformerConfig
from hmtl.errors import ConfigError
from hmtl.modules.embedder import UNK, GloveEmbedding, TransformerEmbedder, resolve_transformer_path, windows


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
    features = minilm.prepare(["Lovelace", "wrote"])
    subwords, owners = features["subwords"], features["owners"]
    assert owners[0] == 0 and owners[-1] == 1 and len(subwords) == len(owners)
    with torch.no_grad():
        states = minilm.layer_states([subwords])[-1]
        words = minilm([features], num_words=2)
    first_word = states[0, [i for i, o in enumerate(owners) if o == 0]].mean(0)
    assert torch.allclose(words[0, 0], first_word, atol=2e-2)  # the frozen model's outputs are cached in bf16


def test_frozen_transformer_outputs_are_computed_once(minilm, monkeypatch):
    features = minilm.prepare(["Grace", "Hopper"])
    minilm.train()
    assert not minilm.model.training  # frozen: no dropout, so outputs can be cached
    first = minilm([features], num_words=2)
    assert "transformer_cache" in features
    monkeypatch.setattr(minilm, "read_states", lambda *_: pytest.fail("the transformer ran again"))
    assert torch.equal(minilm([features], num_words=2), first)


def test_the_disk_state_cache_gives_back_what_memory_would(minilm):
    disk = TransformerEmbedder(TransformerConfig(path="minilm", scalar_mix=False, cache="disk")).eval()
    sentences = [["Grace", "Hopper", "wrote", "COBOL", "."], ["Ada", "lived", "."]]
    memory_features = [minilm.prepare(t) for t in sentences]
    disk_features = [disk.prepare(t) for t in sentences]
    with torch.no_grad():
        first = disk(disk_features, num_words=5)
        assert torch.equal(first, minilm(memory_features, num_words=5))
        offset, shape = disk_features[1]["transformer_cache"][1]  # a place in the file, not a tensor
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
        states = embedder([embedder.prepare(words)], num_words=len(words))
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


def test_the_windows_keep_every_subword_once_with_the_overlap_split_between_neighbours():
    for length in (1, 509, 510, 511, 1300, 4000):
        found = windows(length, 510)
        kept = [position for _, _, keep_from, keep_to in found for position in range(keep_from, keep_to)]
        assert kept == list(range(length))  # every subword once, in order
        for w, (start, end, keep_from, keep_to) in enumerate(found):
            assert end - start <= 510 and start <= keep_from < keep_to <= end
            if 0 < w < len(found) - 1:  # an inner window keeps its middle: 51 subwords of context on each side
                assert keep_from - start == 51 and end - keep_to == 51
    assert len(windows(4000, 510)) == 10  # 408 subwords a window: 1.25 positions per subword


def test_every_word_of_a_long_document_gets_the_state_of_the_window_that_keeps_it(minilm):
    sentences = [["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "."]] * 120
    document = minilm.document(sentences)
    assert len(document) > 2 * MAX_SUBWORDS
    with torch.no_grad():
        whole = minilm.read_states([(document, 0, len(document))])[-1][0]
        for start, end, keep_from, keep_to in document.windows:
            alone = minilm.layer_states([document.subwords[start:end]])[-1][0]
            assert torch.allclose(whole[keep_from:keep_to], alone[keep_from - start : keep_to - start], atol=1e-4)
    assert bool(whole.abs().sum(-1).gt(0).all())  # no subword left without a state


def test_a_document_of_one_sentence_reads_as_the_sentence_does(minilm):
    sentence = ["Ada", "Lovelace", "wrote", "the", "first", "program", "."]
    alone = minilm.prepare(sentence)
    within = minilm.prepare(sentence, read=(minilm.document([sentence]), 0))
    with torch.no_grad():
        assert torch.equal(minilm([alone], num_words=7), minilm([within], num_words=7))


def test_the_sentences_and_the_whole_document_share_one_reading(minilm):
    sentences = [["Ada", "Lovelace", "wrote", "notes", "."], ["She", "lived", "in", "London", "."], ["Babbage", "built", "it", "."]]
    document = minilm.document(sentences)
    units = [minilm.prepare(s, read=(document, first)) for s, first in zip(sentences, (0, 5, 10))]
    units.append(minilm.prepare([t for s in sentences for t in s], read=(document, 0)))
    document.units.extend(units)  # as HierarchicalModel.prepare registers them
    read_before = minilm.positions_read
    with torch.no_grad():
        second = minilm([units[1]], num_words=5)  # one sentence asked for: the document is read, every unit kept
        whole = minilm([units[3]], num_words=14)
        first = minilm([units[0]], num_words=5)
    assert minilm.positions_read - read_before == len(document) + 2  # one window, [CLS] and [SEP]: read once
    assert torch.equal(second[0], whole[0, 5:10]) and torch.equal(first[0], whole[0, :5])
    sentence_alone = minilm.prepare(sentences[1])
    with torch.no_grad():  # the document around it changed the sentence's states
        assert not torch.allclose(minilm([sentence_alone], num_words=5), second, atol=1e-2)


def test_documents_read_in_groups_under_the_budget_give_the_states_of_one_read(minilm, monkeypatch):
    from hmtl.modules import embedder as embedder_module

    texts = [[["Ada", "Lovelace", "wrote", "notes", "."], ["She", "lived", "in", "London", "."]],
             [["Babbage", "built", "the", "engine", "."]], [["Grace", "Hopper", "wrote", "a", "compiler", "."]]]

    def sentence_states(budget: int) -> list[torch.Tensor]:
        monkeypatch.setattr(embedder_module, "READ_BUDGET", budget)
        units = []
        for sentences in texts:
            document, first = minilm.document(sentences), 0
            for sentence in sentences:
                units.append(minilm.prepare(sentence, read=(document, first)))
                document.units.append(units[-1])
                first += len(sentence)
        calls = []
        run = minilm._run
        monkeypatch.setattr(minilm, "_run", lambda inputs, pad: calls.append(len(inputs)) or run(inputs, pad))
        with torch.no_grad():
            states = minilm(units, num_words=6)
        monkeypatch.undo()
        return calls, [states[b, : u["length"]] for b, u in enumerate(units)]

    one_call, together = sentence_states(10_000)
    three_calls, grouped = sentence_states(1)  # every document a group of its own
    assert one_call == [3] and three_calls == [1, 1, 1]
    # the same up to the cache's bf16 rounding (padding to another width moves the last fp32 bits)
    assert all(torch.allclose(a, b, rtol=1e-2, atol=1e-2) for a, b in zip(together, grouped))


def test_document_reading_with_sentence_context_is_a_config_error_naming_the_key():
    from hmtl.checks import parse_config

    base = {"data": {"d": {"reader": "dygie"}}, "levels": [{"name": "a"}],
            "tasks": [{"name": "ner", "type": "crf_tagger", "level": "a", "datasets": ["d"]}]}
    with pytest.raises(ConfigError, match=r"embedder\.transformer.*context: 8, but reading \"document\""):
        parse_config({**base, "embedder": {"transformer": {"reading": "document", "context": 8}}})
    with pytest.raises(ConfigError, match=r"embedder\.transformer\.window"):
        parse_config({**base, "embedder": {"transformer": {"reading": "document", "window": 600}}})
    with pytest.raises(ConfigError, match=r"embedder\.transformer\.reading"):
        parse_config({**base, "embedder": {"transformer": {"reading": "paragraph"}}})
