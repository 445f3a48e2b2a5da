"""Several datasets on one task (one head per namespace, a shared coreference scorer), task chains (``a&b|c``),
per-split readers, held-out validation, and label maps applied when a corpus is read."""
import json
import logging

import pytest
import torch

from conftest import SENTENCES, write_conll
from hmtl.checks import load_config, parse_config
from hmtl.data.document import Document, Relation, Span
from hmtl.data.loading import load_datasets, read_split
from hmtl.errors import ConfigError
from hmtl.model import HierarchicalModel
from hmtl.training.evaluation import evaluate
from hmtl.training.trainer import Trainer, build_labels

TASK_TYPES = {
    "crf_tagger": "f1", "span_classifier": "f1", "relation": "strict_micro_f1", "coreference": "avg_f1",
}


def two_corpora() -> dict[str, list[Document]]:
    """Two toy corpora with disjoint entity and relation types."""
    ada, london, she = Span(0, 2, "PER"), Span(4, 5, "LOC"), Span(6, 7, "PER")
    a = Document("a", [["Ada", "Lovelace", "lived", "in", "London", "."], ["She", "wrote", "."]],
                 entities=[ada, london, she], relations=[Relation(ada, london, "Live_In")],
                 clusters=[[Span(0, 2), Span(6, 7)]])
    ibm, bob, it = Span(0, 1, "Company"), Span(2, 3, "Person"), Span(5, 6, "Company")
    b = Document("b", [["IBM", "hired", "Bob", "."], [".", "It", "grew", "."]],
                 entities=[ibm, bob, it], relations=[Relation(bob, ibm, "Works_For")],
                 clusters=[[Span(0, 1), Span(5, 6)]])
    return {"first": [a], "second": [b]}


def label_types(labels) -> set[str]:
    """Entity (and relation) types of a namespace's labels, tag prefixes removed."""
    values = [v for vs in labels.values() for v in vs] if isinstance(labels, dict) else labels
    return {value.split("-", 1)[-1] for value in values}


def config_for(task_type: str, data: dict | None = None, **extra) -> dict:
    """One task of ``task_type`` over every dataset of ``data`` (default: two DyGIE corpora, first and second)."""
    data = data or {"first": {"reader": "dygie"}, "second": {"reader": "dygie"}}
    return {
        "data": data,
        "embedder": {"char_cnn": {"embedding_dim": 8, "num_filters": 8}, "dropout": 0.0},
        "levels": [{"name": "a", "hidden_size": 24, "dropout": 0.0}],
        "tasks": [{"name": "t", "type": task_type, "level": "a", "datasets": list(data),
                   "options": {} if task_type == "crf_tagger" else {"dropout": 0.0}}],
        **extra,
    }


def train_by_namespace(model: HierarchicalModel, by_namespace: dict[str, list]) -> None:
    """80 rounds of one batch per namespace on task ``t``: enough for the toy corpora to be learnt exactly."""
    optimizer = torch.optim.Adam(model.parameters(), 5e-3)
    for _ in range(80):
        for batch in by_namespace.values():
            optimizer.zero_grad()
            model(model.collate([("t", batch)]))["t"].backward()
            optimizer.step()


@pytest.mark.parametrize("task_type", sorted(TASK_TYPES))
def test_two_datasets_on_one_task_keep_their_own_labels_and_metrics(task_type):
    torch.manual_seed(0)
    config = parse_config(config_for(task_type))
    documents = two_corpora()
    labels = build_labels(config, documents)
    model = HierarchicalModel(config, labels)
    namespaces = labels["tasks"]["t"]
    assert set(namespaces) == {"first__t", "second__t"}
    if task_type != "coreference":  # disjoint label vocabularies, one head per namespace
        first, second = label_types(namespaces["first__t"]), label_types(namespaces["second__t"])
        assert "PER" in first and "PER" not in second and "Company" in second and "Company" not in first
    else:  # one scorer for every dataset: no parameter is specific to a namespace
        assert not any("__t" in name for name, _ in model.named_parameters())
    instances = model.task_instances(documents)
    assert {i.namespace for i in instances["t"]} == {"first__t", "second__t"}
    train_by_namespace(model, {ns: [i for i in instances["t"] if i.namespace == ns] for ns in namespaces})
    metrics = evaluate(model, instances, batch_size=8)
    metric = TASK_TYPES[task_type]
    assert metrics[f"first__t_{metric}"] == metrics[f"second__t_{metric}"] == 100.0
    assert metrics[f"MEAN__t_{metric}"] == 100.0


def test_a_private_encoder_per_namespace_is_trained_only_by_its_own_corpus(tmp_path):
    torch.manual_seed(0)
    raw = config_for("crf_tagger")
    raw["tasks"][0]["options"] = {"private_encoder": {"hidden_size": 6, "dropout": 0.0}}
    config = parse_config(raw)
    documents = two_corpora()
    model = HierarchicalModel(config, build_labels(config, documents))
    tagger = model.task("t")
    assert set(tagger.private) == {"first__t", "second__t"}
    assert tagger.projections["first__t"].in_features == 48 + 12  # shared level states beside the private ones
    instances = model.task_instances(documents)
    by_namespace = {ns: [i for i in instances["t"] if i.namespace == ns] for ns in tagger.namespaces}
    model(model.collate([("t", by_namespace["first__t"])]))["t"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in tagger.private["first__t"].parameters())
    assert all(p.grad is None for p in tagger.private["second__t"].parameters())
    train_by_namespace(model, by_namespace)
    metrics = evaluate(model, instances, batch_size=8)
    assert metrics["first__t_f1"] == metrics["second__t_f1"] == 100.0
    model.save_pretrained(tmp_path / "saved")
    assert evaluate(HierarchicalModel.from_pretrained(tmp_path / "saved"), instances, batch_size=8) == metrics


def test_private_encoders_only_on_the_datasets_listed():
    raw = config_for("crf_tagger")
    raw["tasks"][0]["options"] = {"private_encoder": {"hidden_size": 6, "datasets": ["second"]}}
    config = parse_config(raw)
    documents = two_corpora()
    model = HierarchicalModel(config, build_labels(config, documents))
    tagger = model.task("t")
    assert set(tagger.private) == {"second__t"}
    assert tagger.projections["first__t"].in_features == 48  # the shared level alone
    assert tagger.projections["second__t"].in_features == 48 + 12
    instances = model.task_instances(documents)
    by_namespace = {ns: [i for i in instances["t"] if i.namespace == ns] for ns in tagger.namespaces}
    model(model.collate([("t", by_namespace["first__t"])]))["t"].backward()
    assert all(p.grad is None for p in tagger.private["second__t"].parameters())


def test_a_private_encoder_on_a_dataset_the_task_does_not_read_is_a_config_error_naming_the_key():
    raw = config_for("crf_tagger")
    raw["tasks"][0]["options"] = {"private_encoder": {"hidden_size": 6, "datasets": ["second", "thrid"]}}
    with pytest.raises(ConfigError, match=r": tasks\.t\.options\.private_encoder\.datasets: thrid not among the task's datasets \(first, second\)$"):
        parse_config(raw)  # at config load, before any data is read


def test_a_private_encoder_of_size_zero_is_a_config_error_naming_the_key():
    raw = config_for("crf_tagger")
    raw["tasks"][0]["options"] = {"private_encoder": {"hidden_size": 0}}
    with pytest.raises(ConfigError, match=r"tasks\.t\.options\.private_encoder\.hidden_size"):
        parse_config(raw)  # at config load, before any data is read


def tagging_config(tmp_path, **extra) -> dict:
    """NER and POS (a token column of the same CoNLL file) on one corpus, a second corpus for NER."""
    train = write_conll(tmp_path / "train.conll", SENTENCES, repeat=3)
    other = write_conll(tmp_path / "other.conll", SENTENCES[:2], repeat=2)
    return {
        "seed": 1,
        "data": {"c": {"reader": "conll2003", "train": str(train), "validation": str(train)},
                 "d": {"reader": "conll2003", "train": str(other), "validation": str(other)}},
        "embedder": {"char_cnn": {"embedding_dim": 8, "num_filters": 8}, "dropout": 0.1},
        "levels": [{"name": "low", "hidden_size": 16}, {"name": "high", "hidden_size": 16}],
        "tasks": [{"name": "ner", "type": "crf_tagger", "level": "high", "datasets": ["c", "d"]},
                  {"name": "pos", "type": "crf_tagger", "level": "low", "datasets": ["c"], "options": {"label_layer": "pos"}},
                  {"name": "chunk", "type": "crf_tagger", "level": "low", "datasets": ["c"], "options": {"label_layer": "chunk"}}],
        "trainer": {"num_epochs": 2, "batch_size": 4, "validation_metric": "+MEAN__all"},
        **extra,
    }


def test_chain_joins_tasks_on_one_batch_and_one_pass(tmp_path, monkeypatch):
    config = parse_config(tagging_config(tmp_path, chain="c__ner&pos&chunk|d__ner"))
    assert [(g.name, g.members) for g in config.groups()] == [
        ("c__ner&pos&chunk", (("ner", ("c",)), ("pos", ("c",)), ("chunk", ("c",)))), ("d__ner", (("ner", ("d",)),))]
    trainer = Trainer(config, tmp_path / "run")
    steps = []  # per training step: {task: sources} and the depth of each pass through the levels
    encode, forward = trainer.model.encode, type(trainer.model).forward

    def counting_forward(self, batch):
        steps.append(({t: [i.source for i in b.instances] for t, b in batch.heads}, []))
        return forward(self, batch)

    def counting_encode(batch, depth, shared=None):
        if steps:
            steps[-1][1].append(depth)
        return encode(batch, depth, shared)

    monkeypatch.setattr(trainer.model, "encode", counting_encode)
    monkeypatch.setattr(type(trainer.model), "forward", counting_forward)
    trainer.train()
    joint = [(sources, depths) for sources, depths in steps if len(sources) == 3]
    assert joint and all(s["ner"] == s["pos"] == s["chunk"] for s, _ in joint)  # the same sentences, in order
    assert all(depths[0] == 2 for _, depths in joint)  # one pass up to ner's level (pos and chunk read level 1)
    assert all(len(sources) in (1, 3) for sources, _ in steps)
    history = json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs"]
    assert set(history[0]["task_steps"]) == {"c__ner&pos&chunk", "d__ner"}
    assert set(history[0]["train_loss"]) == {"ner", "pos", "chunk"}
    assert {"c__pos_accuracy", "c__chunk_accuracy", "c__ner_f1", "d__ner_f1"} <= set(history[-1]["validation"])


def test_no_chain_trains_every_task_on_its_own(tmp_path):
    config = parse_config(tagging_config(tmp_path))
    assert [g.name for g in config.groups()] == ["ner", "pos", "chunk"]
    assert all(not g.joint for g in config.groups())


@pytest.mark.parametrize("chain, message", [
    ("ner&nope", "'nope' is neither a task nor a namespace"),
    ("c__ner&d__ner|pos|chunk", "joins task 'ner' with itself"),
    ("ner&pos|chunk", "'&' joins tasks that read the same documents, but in 'ner&pos' ner reads ['c', 'd'], pos reads ['c']"),
    ("c__ner&pos", "c__chunk, d__ner would never be trained"),
    ("ner|pos|chunk|c__ner", "is in the chain twice"),
])
def test_bad_chains_are_config_errors_naming_the_key(tmp_path, chain, message):
    path = tmp_path / "config.json"
    raw = tagging_config(tmp_path, chain=chain)
    raw["data"]["c"]["train"] = str(tmp_path / "missing.conll")  # nothing is read: the chain fails first
    path.write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match="chain: ") as error:
        load_config(path)
    assert message.replace("[", "").replace("]", "") in str(error.value).replace("[", "").replace("]", "")


def test_and_between_a_sentence_task_and_a_document_task_is_a_config_error():
    raw = config_for("crf_tagger")
    raw["tasks"].append({"name": "coref", "type": "coreference", "level": "a", "datasets": ["first", "second"]})
    raw["chain"] = "t&coref"
    with pytest.raises(ConfigError, match="chain: '&' joins tasks that read the same units, but in 't&coref' t reads sentences, coref reads documents"):
        parse_config(raw)


def test_validation_metric_is_checked_at_config_load(tmp_path):
    raw = tagging_config(tmp_path)
    raw["trainer"]["validation_metric"] = "+MEAN__f1"  # the old default matched no metric
    with pytest.raises(ConfigError, match=r"trainer.validation_metric: 'MEAN__f1' is not a metric of this config; use one of MEAN__all, MEAN__chunk_accuracy"):
        parse_config(raw)
    raw["trainer"]["validation_metric"] = "+d__ner_precision"  # any metric of a namespace
    assert parse_config(raw).trainer.validation_metric == "+d__ner_precision"


def relation_corpus(tmp_path):
    record = {"doc_key": "d", "sentences": [["Ada", "met", "Bob", "in", "Paris", "."]],
              "ner": [[[0, 0, "PER"], [2, 2, "PER"], [4, 4, "LOC"]]], "relations": [[[0, 0, 4, 4, "Live_In"], [0, 0, 2, 2, "Knows"]]]}
    path = tmp_path / "corpus.jsonl"
    path.write_text(json.dumps(record) + "\n")
    return path


def test_label_map_renames_and_drops_types_and_their_relations(tmp_path, caplog):
    path = relation_corpus(tmp_path)
    config = parse_config(config_for("relation", {"first": {
        "reader": "dygie", "train": str(path), "label_map": {"LOC": "Location", "MISC": None, "PER": "Person"}}}))
    with caplog.at_level(logging.INFO):
        (document,) = read_split("first", config.data["first"], "train")
    assert [s.label for s in document.entities] == ["Person", "Person", "Location"]
    assert {r.label for r in document.relations} == {"Live_In", "Knows"} and document.relations[0].head.label == "Person"
    assert "label_map names ['MISC'], which never occur; the types are ['LOC', 'PER']" in caplog.text
    assert "renamed {'PER->Person': 2, 'LOC->Location': 1}" in caplog.text
    keep = config.data["first"].model_copy(update={"label_map": {}, "keep_labels": ["PER"]})
    (document,) = read_split("first", keep, "train")
    assert [s.label for s in document.entities] == ["PER", "PER"]
    assert [r.label for r in document.relations] == ["Knows"]  # Live_In lost its LOC argument


def test_label_maps_are_written_into_labels_json(tmp_path):
    raw = tagging_config(tmp_path)
    raw["data"]["c"]["keep_labels"] = ["PER", "LOC"]
    raw["trainer"]["num_epochs"] = 1
    Trainer(parse_config(raw), tmp_path / "run").train()
    labels = json.loads((tmp_path / "run" / "labels.json").read_text())
    assert labels["label_maps"] == {"c": {"label_map": {}, "keep_labels": ["PER", "LOC"]}}
    types = {tag.split("-", 1)[1] for tag in labels["tasks"]["ner"]["c__ner"] if tag != "O"}
    assert types == {"PER", "LOC"} and "ORG" in {t.split("-", 1)[-1] for t in labels["tasks"]["ner"]["d__ner"]}


def test_a_split_may_have_its_own_reader_and_validation_may_be_held_out(tmp_path):
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"doc_id": f"d{i}", "text": "Ada lived in Paris.", "entities": [[0, 3, "PER", "Ada"]]}) + "\n"
                             for i in range(10)))
    test = write_conll(tmp_path / "test.conll", SENTENCES)
    config = parse_config(config_for("crf_tagger", {"first": {
        "reader": "jsonl_spans", "train": str(train), "validation_fraction": 0.2,
        "test": {"path": str(test), "reader": "conll2003", "reader_options": {}}}}))
    loaded = load_datasets(config)["first"]
    assert [d.doc_id for d in loaded["train"]] == [f"d{i}" for i in range(8)]
    assert [d.doc_id for d in loaded["validation"]] == ["d8", "d9"]
    assert loaded["test"][0].sentences[0] == ["Ada", "Lovelace", "lived", "in", "London", "."]
    train.write_text(train.read_text().splitlines()[0] + "\n")  # one document: nothing to hold out
    with pytest.raises(ConfigError, match=r"^data.first.validation_fraction: first's training split has 1 document\(s\), "
                                          "which cannot be split into train and validation; give it a validation split"):
        load_datasets(config)
    with pytest.raises(ConfigError, match="data.first: give either validation or validation_fraction, not both"):
        parse_config(config_for("crf_tagger", {"first": {"reader": "dygie", "validation": "x", "validation_fraction": 0.1}}))
    with pytest.raises(ConfigError, match=r"data.first.test.reader_options.tag_col: unknown option of reader 'conll2003'; it takes tag_column"):
        parse_config(config_for("crf_tagger", {"first": {"reader": "dygie", "test": {"path": "x", "reader": "conll2003", "reader_options": {"tag_col": 1}}}}))


def test_cross_corpus_evaluation_and_prediction_pick_a_namespace(tmp_path, capsys):
    """A model with heads for two corpora scores one head on a file of another format, with a label map, names
    the gold types it cannot predict, and predicts with the heads asked for."""
    from hmtl.cli import evaluate_main, predict_main
    from hmtl.predict import Predictor

    raw = tagging_config(tmp_path)
    raw["data"]["d"]["label_map"] = {"ORG": "Company"}
    raw["trainer"]["num_epochs"] = 1
    Trainer(parse_config(raw), tmp_path / "run").train()
    other = write_jsonl_corpus(tmp_path / "other.jsonl")
    out = tmp_path / "cross.json"
    evaluate_main(["--serialization_dir", str(tmp_path / "run"), "--evaluation_data_file", str(other),
                   "--reader", "jsonl_spans", "--namespace", "c__ner", "--label_map", '{"person": "PER", "city": "LOC", "thing": null}',
                   "--output_file", str(out)])
    captured = capsys.readouterr()
    assert "warning: c__ner never predicts the gold types animal (1): they count as misses" in captured.err
    metrics = json.loads(out.read_text())
    assert "c__ner_f1" in metrics and not any(key.startswith("d__") for key in metrics)
    predictor = Predictor.from_serialization_dir(tmp_path / "run")
    both = predictor.predict([["IBM", "hired", "Grace", "."]], namespaces=["c__ner", "d__ner"])
    assert {"c__ner", "d__ner"} <= set(both) and "pos" not in both
    heads = {"c__ner", "c__pos", "c__chunk"}  # each task's first dataset's, keyed as an explicit list would be
    assert set(predictor.predict([["IBM", "hired", "Grace", "."]])) == {"doc_id", "text", "sentences"} | heads
    assert set(predictor.predict([["IBM", "hired", "Grace", "."]], namespaces="all")) == {"doc_id", "text", "sentences", "d__ner"} | heads
    with pytest.raises(Exception, match="unknown namespace.*e__ner.*the model has c__ner, d__ner"):
        predictor.predict("IBM hired Grace.", namespaces=["e__ner"])
    text = tmp_path / "docs.txt"
    text.write_text("Ada lived in Paris.\nIBM hired Grace.\n")
    predict_main(["--serialization_dir", str(tmp_path / "run"), "--input_file", str(text), "--output_file",
                  str(tmp_path / "p.jsonl"), "--namespaces", "d__ner"])
    lines = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and all(set(line) == {"doc_id", "text", "sentences", "d__ner"} for line in lines)
    predict_main(["--serialization_dir", str(tmp_path / "run"), "--input_file", str(text), "--output_file",
                  str(tmp_path / "p.jsonl"), "--namespaces", "all"])
    lines = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert all(set(line) == {"doc_id", "text", "sentences", "d__ner"} | heads for line in lines)
    with pytest.raises(SystemExit):
        predict_main(["--serialization_dir", str(tmp_path / "run"), "--input_file", str(text), "--namespaces", "x__ner"])
    assert "unknown namespace(s) x__ner" in capsys.readouterr().err


def write_jsonl_corpus(path):
    records = [{"doc_id": "o1", "text": "Ada lived in Paris with a cat.",
                "entities": [[0, 3, "person", "Ada"], [13, 18, "city", "Paris"], [26, 29, "animal", "cat"]]},
               {"doc_id": "o2", "text": "Grace saw a box.", "entities": [[0, 5, "person", "Grace"], [12, 15, "thing", "box"]]}]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_the_worked_example_of_docs_data_md_is_a_valid_config():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "DATA.md").read_text()
    example = re.search(r"`configs/my_ner.json`:\n\n```json\n(.*?)```", text, re.S).group(1)
    config = parse_config(json.loads(example))
    assert config.tasks[0].datasets == ["mine"] and config.data["mine"].reader == "conll2003"


def retyped(types: dict[str, str]) -> list:
    """The tiny corpus' sentences with their entity types renamed (``types``: old -> new)."""
    return [[(token, tag if tag == "O" else tag[:2] + types.get(tag[2:], tag[2:])) for token, tag in sentence]
            for sentence in SENTENCES]


@pytest.mark.parametrize("types, options, scored", [
    ({}, ["--keep_labels", "PER"], ["PER"]),  # the head's LOC and ORG were false positives: F1 40, not 100
    ({"PER": "person", "LOC": "place", "ORG": "organization"},  # the README's GUM example
     ["--label_map", '{"person": "PER", "place": "LOC", "organization": "ORG"}', "--keep_labels", "PER,LOC"], ["LOC", "PER"]),
    # the file swaps LOC and ORG, the map swaps them back: a predicted LOC, a type the map renames into, stays LOC
    ({"LOC": "ORG", "ORG": "LOC"}, ["--label_map", '{"LOC": "ORG", "ORG": "LOC"}'], ["LOC", "ORG", "PER"]),
])
def test_cross_corpus_scores_map_the_predictions_as_the_gold(trained_tiny_ner, tmp_path, types, options, scored):
    """The tiny model tags these sentences perfectly: whatever the file calls the types, once mapped onto the
    head's and cut to the kept ones, gold and predictions agree."""
    from hmtl.cli import evaluate_main

    out = tmp_path / "e.json"
    evaluate_main(["--serialization_dir", str(trained_tiny_ner), "--namespace", "tiny__ner", "--evaluation_data_file",
                   str(write_conll(tmp_path / "other.conll", retyped(types))), "--output_file", str(out), *options])
    metrics = json.loads(out.read_text())
    assert metrics["tiny__ner_f1"] == 100.0
    assert sorted(key.rsplit("_", 1)[1] for key in metrics if key.startswith("tiny__ner_f1_")) == scored


def test_keep_labels_that_keep_nothing_stop_naming_the_types_there_are(trained_tiny_ner, capsys, caplog):
    from hmtl.cli import evaluate_main

    dev = trained_tiny_ner.parent / "dev.conll"
    with pytest.raises(SystemExit):
        evaluate_main(["--serialization_dir", str(trained_tiny_ner), "--evaluation_data_file", str(dev), "--keep_labels", "PERSON"])
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"error: --keep_labels: none of PERSON is an entity type of tiny test ({dev})")
    assert error.endswith("; its types are LOC, ORG, PER") and "\n" not in error
    raw = json.loads((trained_tiny_ner / "config.json").read_text())
    raw["data"]["tiny"]["keep_labels"] = []
    with pytest.raises(ConfigError, match="data.tiny.keep_labels: List should have at least 1 item"):
        parse_config(raw)
    raw["data"]["tiny"]["keep_labels"] = ["PER", "PERSON"]
    with caplog.at_level(logging.WARNING):
        read_split("tiny", parse_config(raw).data["tiny"], "train")
    assert "keep_labels names ['PERSON'], which never occur; the types are ['LOC', 'ORG', 'PER']" in caplog.text
    raw["data"]["tiny"]["keep_labels"] = ["PERSON"]
    with pytest.raises(ConfigError, match=r"^data\.tiny\.keep_labels: none of PERSON is an entity type of tiny train"):
        read_split("tiny", parse_config(raw).data["tiny"], "train")
