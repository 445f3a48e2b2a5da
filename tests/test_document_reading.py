"""Document reading (``embedder.transformer.reading: "document"``): the transformer reads each document once, in
overlapping windows, and every task's units (sentences, whole documents) take their states from that pass."""
import json

import torch

from conftest import four_task_config, write_tiny_ner_config
from hmtl.checks import parse_config
from hmtl.data.document import Document, Span
from hmtl.model import HierarchicalModel
from hmtl.predict import Predictor
from hmtl.training.trainer import Trainer, build_labels

TEXT = ("Ada Lovelace lived in London with her mother. She wrote the first program for the Analytical Engine. "
        "Charles Babbage designed that engine in 1837. He never finished building it. "
        "Grace Hopper later wrote the first compiler. IBM hired her in 1949.")


def reading_config(reading: str, fine_tune: bool = True) -> dict:
    """The quick start's four tasks (configs/sample.json) on a small embedder that reads as ``reading`` says."""
    return four_task_config({"char_cnn": {"embedding_dim": 8, "num_filters": 8},
                             "transformer": {"path": "minilm", "fine_tune": fine_tune, "reading": reading}})


def positions_per_subword(reading: str) -> float:
    """What the transformer's forward receives per subword of the text when every head predicts it."""
    config = parse_config(reading_config(reading))
    document = Document("d", [["Ada", "wrote", "."]], entities=[Span(0, 1, "PER")])
    model = HierarchicalModel(config, build_labels(config, {"toy": [document]}))
    predictor = Predictor(model)
    transformer = model.embedder.transformer
    subwords = sum(len(transformer.ids(sentence)[0]) for sentence in predictor.documents([TEXT])[0].sentences)
    before = transformer.positions_read
    predictor.predict(TEXT, namespaces="all")
    return (transformer.positions_read - before) / subwords


def test_document_reading_reads_each_subword_about_once_where_sentence_reading_reads_it_twice():
    assert positions_per_subword("document") <= 1.3  # one window over the text: its subwords plus [CLS] and [SEP]
    assert positions_per_subword("sentence") > 2  # every sentence alone, then the document again for coreference


def words_the_levels_read(model: HierarchicalModel, predictor: Predictor) -> tuple[int, list]:
    """Words the first level is given while every head predicts ``TEXT``, and the predictions."""
    read = []
    hook = model.levels[0].register_forward_hook(lambda module, args, output: read.append(int(args[1].sum())))
    predictions = predictor.predict(TEXT, namespaces="all")
    hook.remove()
    return sum(read), predictions


def test_the_levels_read_a_sentence_once_for_its_own_heads_and_its_documents(monkeypatch):
    torch.manual_seed(0)
    config = parse_config(reading_config("document"))
    model = HierarchicalModel(config, build_labels(config, {"toy": [Document("d", [["Ada", "."]])]}))
    predictor = Predictor(model)
    words = sum(len(sentence) for sentence in predictor.documents([TEXT])[0].sentences)
    shared_words, shared = words_the_levels_read(model, predictor)
    assert shared_words == words  # the sentence heads' pass; coreference's documents read its states
    encode = HierarchicalModel.encode
    monkeypatch.setattr(HierarchicalModel, "encode", lambda self, batch, depth, shared=None: encode(self, batch, depth))
    alone_words, alone = words_the_levels_read(model, predictor)
    assert alone_words == 2 * words and json.dumps(alone) == json.dumps(shared)  # the same states either way
    monkeypatch.undo()
    config = parse_config(reading_config("sentence"))  # a sentence read alone is not its document's sentence
    model = HierarchicalModel(config, build_labels(config, {"toy": [Document("d", [["Ada", "."]])]}))
    assert words_the_levels_read(model, Predictor(model))[0] == 2 * words


def test_coreference_and_a_sentence_task_train_together_on_a_document_longer_than_a_window():
    torch.manual_seed(0)
    sentences = [["Ada", "Lovelace", "wrote", "the", "notes", "on", "the", "engine", "."], ["She", "lived", "in", "London", "."]] * 40
    ada = [Span(14 * i, 14 * i + 2) for i in range(40)]
    she = [Span(14 * i + 9, 14 * i + 10) for i in range(40)]
    document = Document("long", sentences, entities=[Span(s.start, s.end, "PER") for s in ada],
                        clusters=[ada + she])
    config = parse_config({**reading_config("document", fine_tune=False),
                           "tasks": [{"name": "ner", "type": "crf_tagger", "level": "a", "datasets": ["toy"]},
                                     {"name": "coref", "type": "coreference", "level": "b", "datasets": ["toy"]}]})
    model = HierarchicalModel(config, build_labels(config, {"toy": [document]}))
    instances = model.task_instances({"toy": [document]})
    read = instances["coref"][0].features["read"][0]
    assert len(read) > 510 and len(read.windows) >= 2
    assert all(i.features["read"][0] is read for found in instances.values() for i in found)  # one reading for all
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], 1e-2)
    losses = []
    for _ in range(3):
        for name, found in instances.items():
            optimizer.zero_grad()
            loss = model(model.collate([(name, found)]))[name]
            loss.backward()
            optimizer.step()
            losses.append((name, loss.item()))
    assert all(torch.isfinite(torch.tensor(value)) for _, value in losses)
    assert losses[-1][1] < losses[1][1] and losses[-2][1] < losses[0][1]  # both heads learn from the shared states


def test_a_model_trained_reading_documents_evaluates_reading_sentences_too(tmp_path):
    from hmtl.cli import evaluate_main

    config = json.loads(write_tiny_ner_config(tmp_path, epochs=2).read_text())
    config["embedder"]["transformer"] = {"path": "minilm", "reading": "document"}
    test = Trainer(parse_config(config), tmp_path / "run").train()
    for reading in ("document", "sentence"):
        evaluate_main(["--serialization_dir", str(tmp_path / "run"), "--output_file", str(tmp_path / f"{reading}.json"),
                       "--overrides", json.dumps({"embedder": {"transformer": {"reading": reading}}})])
    assert json.loads((tmp_path / "document.json").read_text()) == test  # read as trained: the scores training had
    assert "tiny__ner_f1" in json.loads((tmp_path / "sentence.json").read_text())


def test_a_document_with_empty_sentences_trains_and_decodes_in_both_reading_modes():
    """Readers keep an empty sentence (a DyGIE line's ``[]``): it has no words to read, in either mode."""
    document = Document("gaps", [["Ada", "wrote", "."], [], ["She", "ran", "."], []],
                        entities=[Span(0, 1, "PER"), Span(3, 4, "PER")], clusters=[[Span(0, 1), Span(3, 4)]])
    for reading in ("document", "sentence"):
        config = parse_config(reading_config(reading, fine_tune=False))
        model = HierarchicalModel(config, build_labels(config, {"toy": [document]}))
        for name, found in model.task_instances({"toy": [document]}).items():
            batch = model.collate([(name, found)])
            loss = model(batch)[name]
            assert torch.isfinite(loss), (reading, name)
            loss.backward()
            model.decode_heads(batch)


def test_a_sentence_longer_than_the_window_is_read_in_windows_and_logged(caplog):
    words = [f"word{i}" for i in range(40)] + ["."]
    document = Document("long", [words, ["Ada", "ran", "."]], entities=[Span(41, 42, "PER")])
    for reading in ("document", "sentence"):
        config = parse_config(four_task_config({"char_cnn": {"embedding_dim": 8, "num_filters": 8},
                                                "transformer": {"path": "minilm", "reading": reading, "window": 32}}))
        model = HierarchicalModel(config, build_labels(config, {"toy": [document]}))
        caplog.clear()
        with caplog.at_level("INFO", logger="hmtl.model"):
            instances = model.task_instances({"toy": [document]})
        assert "1 sentence(s) longer than the transformer's window of 32 subwords" in caplog.text, reading
        batch = model.collate([("ner", instances["ner"])])
        _, outputs, mask = model.encode(batch, 1)
        assert mask[0].sum() == len(words) and outputs[0][0, : len(words)].abs().sum(-1).gt(0).all()  # every word a state
