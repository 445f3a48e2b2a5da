"""The sentence classifier: its scores on hand-computed cases, its options and one-line errors, pooling that ignores
padding, learning toy corpora (single- and multi-label) and scoring held-out sentences, and its prediction output."""
import json

import pytest
import torch

from hmtl.checks import parse_config
from hmtl.data.document import Document
from hmtl.errors import ConfigError, DataFormatError
from hmtl.metrics.classification import ClassificationScores
from hmtl.model import HierarchicalModel
from hmtl.training.evaluation import evaluate
from hmtl.training.trainer import build_labels
from conftest import train_heads


def test_single_label_scores():
    metric = ClassificationScores()
    for predicted, gold in zip("ABBA", "AABC"):
        metric.update([predicted], [gold])
    scores = {k: round(v, 2) for k, v in metric.compute().items()}
    assert scores["accuracy"] == 50.0
    assert (scores["f1_A"], scores["f1_B"], scores["f1_C"]) == (50.0, 66.67, 0.0)
    assert scores["macro_f1"] == 38.89 and scores["macro_precision"] == round((50 + 50 + 0) / 3, 2)
    assert "micro_f1" not in scores  # it would equal the accuracy


def test_multi_label_scores():
    metric = ClassificationScores(multi_label=True)
    for predicted, gold in [({"a"}, {"a", "b"}), ({"a", "c"}, {"a"}), (set(), set())]:
        metric.update(predicted, gold)
    scores = {k: round(v, 2) for k, v in metric.compute().items()}
    assert scores["accuracy"] == 33.33  # only the empty set is exactly right
    assert (scores["micro_precision"], scores["micro_recall"], scores["micro_f1"]) == (66.67, 66.67, 66.67)
    assert (scores["f1_a"], scores["f1_b"], scores["f1_c"]) == (100.0, 0.0, 0.0)
    assert scores["macro_f1"] == 33.33


def config(**tasks):
    """A small model with the named classifier tasks (name -> options), each on the dataset of its name."""
    return parse_config({
        "data": {name: {"reader": "ade"} for name in tasks},
        "embedder": {"char_cnn": {"embedding_dim": 8, "num_filters": 8}, "dropout": 0.0},
        "levels": [{"name": "a", "hidden_size": 16, "dropout": 0.0}],
        "tasks": [{"name": name, "type": "classifier", "level": "a", "datasets": [name],
                   "options": {"dropout": 0.0, **options}} for name, options in tasks.items()],
    })


@pytest.mark.parametrize("options, message", [
    ({"threshold": 0.3}, "tasks.topic.options.threshold: Value error, a threshold applies to multi_label"),
    ({"multi_label": True, "threshold": 1.5}, "tasks.topic.options.threshold: Input should be less than 1"),
    ({"pooling": "sum"}, "tasks.topic.options.pooling: Input should be 'mean', 'max' or 'attention'"),
])
def test_options_are_checked_with_their_dotted_key(options, message):
    with pytest.raises(ConfigError) as error:
        config(topic=options)
    assert message in str(error.value)


def test_missing_sentence_labels_are_one_line_errors_naming_where():
    model_config = config(topic={})
    labelled = Document("doc1", [["We", "ate", "."], ["It", "rained", "."]], sentence_labels=[["food"], ["weather"]])
    model = HierarchicalModel(model_config, build_labels(model_config, {"topic": [labelled]}))
    gap = Document("doc2", [["We", "ate", "."], ["It", "rained", "."]], sentence_labels=[["food"], []])
    with pytest.raises(DataFormatError, match=r"^dataset topic: document 'doc2', sentence 1 \('It rained \.'\.\.\.\): "
                                              r"0 sentence labels \[\]; the classifier 'topic' needs exactly one$"):
        model.task("topic").instances([gap], "topic")
    with pytest.raises(ConfigError, match="tasks.topic: training document 'bare' of dataset 'topic' has no sentence labels"):
        build_labels(model_config, {"topic": [Document("bare", [["x"]])]})
    unscored = model.prepare(model.task("topic").instances([Document("raw", [["x"]])], "topic"))
    with pytest.raises(DataFormatError, match="dataset topic: document 'raw' has no sentence labels to score against"):
        evaluate(model, {"topic": unscored}, batch_size=4)


@pytest.mark.parametrize("pooling", ["mean", "max", "attention"])
def test_pooling_ignores_the_padding_of_a_longer_sentence_in_the_batch(pooling):
    torch.manual_seed(0)
    model_config = config(topic={"pooling": pooling})
    document = Document("d", [["We", "ate", "."], ["It", "rained", "all", "day", "long", "."]],
                        sentence_labels=[["food"], ["weather"]])
    model = HierarchicalModel(model_config, build_labels(model_config, {"topic": [document]})).eval()
    short, long = model.prepare(model.task("topic").instances([document], "topic"))
    alone = model.decode_heads(model.collate([("topic", [short])]))[0][0]
    together = model.decode_heads(model.collate([("topic", [short, long])]))[0][0]
    for label, probability in alone.probabilities.items():
        assert together.probabilities[label] == pytest.approx(probability, abs=1e-5)


FOOD, SPORT = ["pizza", "soup", "bread", "pasta"], ["football", "tennis", "golf", "hockey"]
PEOPLE = ["we", "they", "my friends", "the children"]


def sentence(person: str, food: str | None, sport: str | None) -> tuple[list[str], list[str]]:
    """Tokens and the labels of the topics it mentions."""
    parts, labels = [], []
    if food:
        parts.append(["ate", food])
        labels.append("food")
    if sport:
        parts.append(["played", sport])
        labels.append("sport")
    words = person.split() + [w for i, part in enumerate(parts) for w in (["and"] if i else []) + part]
    return words + (["slept"] if not parts else []) + ["."], labels


def corpus(doc_id: str, rows) -> Document:
    pairs = [sentence(*row) for row in rows]
    return Document(doc_id, [tokens for tokens, _ in pairs], sentence_labels=[labels for _, labels in pairs])


@pytest.mark.parametrize("pooling", ["mean", "attention"])
def test_single_and_multi_label_heads_learn_toy_corpora_and_score_held_out_sentences(pooling):
    torch.manual_seed(0)
    model_config = config(topic={"hidden_size": 32, "pooling": pooling}, tags={"multi_label": True, "pooling": "max", "hidden_size": 32})
    people = PEOPLE[:3]
    topics = corpus("topics", [(p, f, None) for p in people for f in FOOD[:3]] + [(p, None, s) for p in people for s in SPORT[:3]])
    combinations = [(FOOD[0], SPORT[0]), (FOOD[1], None), (None, SPORT[1]), (FOOD[2], SPORT[2]), (FOOD[0], None),
                    (None, SPORT[2]), (None, None)]
    tags = corpus("tags", [(p, f, s) for p in people for f, s in combinations])
    train = {"topic": [topics], "tags": [tags]}
    model = HierarchicalModel(model_config, build_labels(model_config, train))
    instances = {name: model.prepare(model.task(name).instances(docs, name)) for name, docs in train.items()}
    train_heads(model, instances, 40, 1e-2)
    person = PEOPLE[3]  # "the children", and the fourth food and sport: sentences never seen
    held_out = {
        "topic": corpus("topics-test", [(person, FOOD[3], None), (person, None, SPORT[3]), ("we", FOOD[3], None)]),
        "tags": corpus("tags-test", [(person, FOOD[3], SPORT[3]), (person, None, SPORT[3]), (person, FOOD[3], None),
                                     (person, None, None)]),
    }
    test = {name: model.prepare(model.task(name).instances([doc], name)) for name, doc in held_out.items()}
    metrics = evaluate(model, test, batch_size=8)
    assert metrics["MEAN__topic_accuracy"] == 100.0 and metrics["MEAN__topic_macro_f1"] == 100.0, metrics
    assert metrics["MEAN__tags_micro_f1"] == 100.0 and metrics["MEAN__tags_accuracy"] == 100.0, metrics


def test_predicted_sentence_labels_come_with_their_probabilities():
    from hmtl.predict import Predictor

    model_config = config(topic={}, tags={"multi_label": True, "threshold": 0.2})
    labelled = {"topic": [corpus("t", [("we", "soup", None), ("we", None, "golf")])],
                "tags": [corpus("g", [("we", "soup", "golf")])]}
    model = HierarchicalModel(model_config, build_labels(model_config, labelled))
    output = Predictor(model).predict("We ate soup.\nThey played golf.", namespaces=["topic__topic", "tags__tags"])
    single, multi = output["topic__topic"]["sentence_labels"], output["tags__tags"]["sentence_labels"]
    assert [s["sentence"] for s in single] == [s["sentence"] for s in multi] == [0, 1]
    for found in single:
        probabilities = found["probabilities"]
        assert set(probabilities) == {"food", "sport"} and sum(probabilities.values()) == pytest.approx(1)
        assert found["labels"] == [max(probabilities, key=probabilities.get)]
    for found in multi:
        assert found["labels"] == [label for label, p in found["probabilities"].items() if p > 0.2]


def scored(task, ns, rows):
    """(prediction, instance) pairs of sentences whose probability of the first label is p and whose gold is gold."""
    from hmtl.tasks.base import Instance
    from hmtl.tasks.classifier import SentencePrediction

    names = task.labels[ns]
    pairs = []
    for index, (probabilities, gold) in enumerate(rows):
        prediction = SentencePrediction(index, (), dict(zip(names, probabilities)))
        pairs.append((prediction, Instance(["x"], ns, gold, source=("d", index))))
    return pairs


def test_tuning_chooses_the_threshold_of_the_best_validation_score_and_decides_with_it():
    model_config = config(ade={"tune_thresholds": True}, tags={"multi_label": True, "tune_thresholds": True})
    labelled = {"ade": [Document("a", [["x"], ["y"]], sentence_labels=[["ADE"], ["NEG"]])],
                "tags": [Document("t", [["x"]], sentence_labels=[["a", "b"]])]}
    model = HierarchicalModel(model_config, build_labels(model_config, labelled))
    single, multi = model.task("ade"), model.task("tags")
    assert single.tunes and multi.tunes
    # ADE at p(ADE) 0.65, 0.8, 0.9 and NEG at 0.2, 0.55, 0.6: every threshold in (0.60, 0.65] separates them; of
    # those, 0.61 is nearest 0.5. At 0.5 two NEG sentences would be called ADE.
    rows = [((p, 1 - p), ["ADE"]) for p in (0.65, 0.8, 0.9)] + [((p, 1 - p), ["NEG"]) for p in (0.2, 0.55, 0.6)]
    assert model.tune("ade", {"ade__ade": scored(single, "ade__ade", rows)}) == {"thresholds": {"ade": {"ADE": 0.61}}}
    assert single.options.thresholds == {"ade": {"ADE": 0.61}}
    assert next(t for t in model.config.tasks if t.name == "ade").options["thresholds"] == {"ade": {"ADE": 0.61}}
    assert single._choose({"ADE": 0.62, "NEG": 0.38}, {"ADE": 0.61}) == ("ADE",)
    assert single._choose({"ADE": 0.6, "NEG": 0.4}, {"ADE": 0.61}) == ("NEG",)
    # multi-label (a label above its threshold), each label its own: a is gold at 0.3 and 0.9, not at 0.2 and 0.1,
    # so t in [0.2, 0.3) is perfect (0.29); b is gold at 0.7, 0.4 and 0.9, not at 0.45: below 0.4 all four are
    # called (F1 6/7), from 0.45 the 0.4 one is missed (F1 4/5), so 0.39
    rows = [((0.3, 0.7), ["a", "b"]), ((0.2, 0.4), ["b"]), ((0.1, 0.45), []), ((0.9, 0.9), ["a", "b"])]
    chosen = model.tune("tags", {"tags__tags": scored(multi, "tags__tags", rows)})["thresholds"]["tags"]
    assert chosen["a"] == 0.29 and chosen["b"] == 0.39


@pytest.mark.parametrize("options, message", [
    ({"thresholds": {"other": {"ADE": 0.5}}}, "tasks.ade.options.thresholds.other: not a dataset of this task (ade)"),
    ({"thresholds": {"ade": {"ADR": 0.5}}}, "tasks.ade.options.thresholds.ade: unknown labels ['ADR']; the head has"),
    ({"thresholds": {"ade": {"ADE": 0.5, "NEG": 0.5}}}, "a single-label head takes one threshold and only between"),
    ({"thresholds": {"ade": {"ADE": 1.0}}}, "tasks.ade.options.thresholds: Value error, ade.ADE: a threshold is a "
                                            "probability between 0 and 1, got 1.0"),
])
def test_thresholds_are_checked_with_their_dotted_key(options, message):
    labelled = {"ade": [Document("a", [["x"], ["y"]], sentence_labels=[["ADE"], ["NEG"]])]}
    with pytest.raises(ConfigError) as error:  # the value's range with the config, the labels when the head is built
        model_config = config(ade=options)
        HierarchicalModel(model_config, build_labels(model_config, labelled))
    assert message in str(error.value)


def test_a_single_label_head_of_three_labels_refuses_to_tune():
    model_config = config(topic={"tune_thresholds": True})
    labelled = {"topic": [Document("a", [["x"], ["y"], ["z"]], sentence_labels=[["a"], ["b"], ["c"]])]}
    with pytest.raises(ConfigError, match="tasks.topic.options.tune_thresholds: a single-label head tunes a threshold "
                                          "between two labels only; topic__topic has 3"):
        HierarchicalModel(model_config, build_labels(model_config, labelled))


def test_training_tunes_the_threshold_on_validation_and_the_saved_model_decides_with_it(tmp_path, capsys):
    from hmtl.cli import evaluate_main
    from hmtl.model import load_model
    from hmtl.training.trainer import Trainer

    ae = "".join(f"{i}|Rash after {drug}.|Rash|0|4|{drug}|11|{11 + len(drug)}\n"
                 for i, drug in enumerate(["heparin", "aspirin", "insulin", "codeine"]))
    neg = "".join(f"{i + 10} NEG {drug} is widely used.\n" for i, drug in enumerate(["Heparin", "Aspirin", "Insulin"]))
    for split in ("train", "dev", "test"):
        (tmp_path / split).mkdir()
        (tmp_path / split / "DRUG-AE.rel").write_text(ae)
        (tmp_path / split / "DRUG-DOSE.rel").write_text("")
        (tmp_path / split / "ADE-NEG.txt").write_text(neg)
    raw = config(ade={"tune_thresholds": True}).model_dump()
    raw["data"]["ade"].update({"train": str(tmp_path / "train"), "validation": str(tmp_path / "dev"),
                               "test": str(tmp_path / "test")})
    raw["trainer"].update({"num_epochs": 2, "batch_size": 4})
    out = tmp_path / "run"
    Trainer(parse_config(raw), out).train()
    model = load_model(out / "best")
    (threshold,) = model.task("ade").options.thresholds["ade"].values()
    assert 0 < threshold < 1 and list(model.task("ade").options.thresholds["ade"]) == ["ADE"]
    assert json.loads((out / "best" / "config.json").read_text())["tasks"][0]["options"]["thresholds"] == {
        "ade": {"ADE": threshold}}
    # evaluate.py --tune chooses again on the same weights and split: the same threshold; without a head that
    # tunes, a one-line error
    evaluate_main(["--serialization_dir", str(out), "--tune", "--device", "cpu"])
    assert f'chosen on the validation split: {{"ade": {{"thresholds": {{"ade": {{"ADE": {threshold}}}}}}}}}' in \
        capsys.readouterr().out
    saved = json.loads((out / "best" / "config.json").read_text())["tasks"]
    saved[0]["options"]["tune_thresholds"] = False
    with pytest.raises(SystemExit):
        evaluate_main(["--serialization_dir", str(out), "--tune", "--overrides", json.dumps({"tasks": saved})])
    assert capsys.readouterr().err.strip() == ("error: --tune: nothing was tuned: no head of this model tunes "
                                               "decision settings (set a classifier's options.tune_thresholds with "
                                               "--overrides), or no validation split")
