"""Span NER as SpanMarker users run it: the two configs (configs/span_ner_conll03*.json) and the cheap parts of
scripts/bench_span_marker.py and scripts/span_marker_worker.py (the shared scorer, the sentence cuts and the
conversions). Neither SpanMarker nor a corpus is needed."""
import importlib.util
import json
from pathlib import Path

import pytest

from hmtl.checks import load_config
from hmtl.data.document import Document, Span
from hmtl.data.loading import make_reader

ROOT = Path(__file__).resolve().parents[1]


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = load_script("bench_span_marker")
worker = load_script("span_marker_worker")


@pytest.mark.parametrize("name", ["span_ner_conll03.json", "span_ner_conll03_system_b.json"])
def test_configs_are_spanmarkers_recipe_on_the_fine_tuned_encoder_alone(name):
    config = load_config(str(ROOT / "configs" / name))
    (task,) = config.tasks
    assert task.type == "span_classifier" and task.datasets == ["conll03"]
    assert task.options["flat"] is True and task.options["max_width"] == 8
    embedder = config.embedder
    assert embedder.glove is None and embedder.char_cnn is None
    transformer = embedder.transformer
    assert (transformer.path, transformer.fine_tune, transformer.window) == ("minilm", True, 254)  # 254 + [CLS] + [SEP] = 256
    trainer = config.trainer
    assert trainer.accumulation_steps == 2 and trainer.batch_size == 32
    assert trainer.warmup_ratio == 0.1 and trainer.decay == "linear"
    assert trainer.transformer_learning_rate == 5e-5
    assert config.data["conll03"].reader == "conll2003"


def test_system_b_keeps_per_loc_org_and_differs_from_a_in_nothing_else():
    a = json.loads((ROOT / "configs" / "span_ner_conll03.json").read_text())
    b = json.loads((ROOT / "configs" / "span_ner_conll03_system_b.json").read_text())
    assert load_config(str(ROOT / "configs" / "span_ner_conll03.json")).data["conll03"].keep_labels is None
    kept = load_config(str(ROOT / "configs" / "span_ner_conll03_system_b.json")).data["conll03"].keep_labels
    assert sorted(kept) == ["LOC", "ORG", "PER"]
    b["data"]["conll03"].pop("keep_labels")
    assert a == b
    assert bench.CONFIGS == {"A": ROOT / "configs" / "span_ner_conll03.json",
                             "B": ROOT / "configs" / "span_ner_conll03_system_b.json"}


def test_shared_scorer_on_a_hand_counted_case():
    gold = [[(0, 2, "PER"), (3, 4, "LOC")], [(1, 2, "ORG")]]
    # sentence 0: PER right, LOC one word too long; sentence 1: ORG right, and sentence 0's LOC span, which is no
    # gold of sentence 1: 2 right of 4 predicted, 3 gold
    predicted = [[(0, 2, "PER"), (3, 5, "LOC")], [(1, 2, "ORG"), (3, 4, "LOC")]]
    scores = bench.score_spans(predicted, gold)
    assert scores["precision"] == pytest.approx(50.0)
    assert scores["recall"] == pytest.approx(200 / 3)
    assert scores["f1"] == pytest.approx(2 * 50 * (200 / 3) / (50 + 200 / 3))  # 57.14
    assert (scores["f1_PER"], scores["f1_LOC"], scores["f1_ORG"]) == (pytest.approx(100.0), 0.0, pytest.approx(100.0))
    assert bench.score_spans([[(0, 2, "LOC")], []], gold)["f1"] == 0.0  # right span, wrong type
    with pytest.raises(ValueError, match="2 gold sentences"):
        bench.score_spans([[]], gold)


CONLL = """-DOCSTART- -X- O O

EU NNP I-NP I-ORG
rejects VBZ I-VP O
. . O O

Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- O O

BRUSSELS NNP I-NP I-LOC
1996-08-22 CD I-NP O
"""


@pytest.mark.parametrize("limit,expected", [(1, [["EU", "rejects", "."]]),
                                            (2, [["EU", "rejects", "."], ["Peter", "Blackburn"]]),
                                            (3, [["EU", "rejects", "."], ["Peter", "Blackburn"], ["BRUSSELS", "1996-08-22"]]),
                                            (9, [["EU", "rejects", "."], ["Peter", "Blackburn"], ["BRUSSELS", "1996-08-22"]])])
def test_first_sentences_cuts_a_conll_file_that_hmtls_reader_reads(tmp_path, limit, expected):
    source, target = tmp_path / "eng.conll", tmp_path / "cut.conll"
    source.write_text(CONLL)
    assert bench.first_sentences(source, target, limit) == len(expected)
    documents = make_reader("conll03", "conll2003", {}).read(str(target))
    found = bench.sentences(documents)
    assert [s["tokens"] for s in found] == expected
    spans = {("EU",): [[0, 1, "ORG"]], ("Peter",): [[0, 2, "PER"]], ("BRUSSELS",): [[0, 1, "LOC"]]}
    assert [s["spans"] for s in found] == [spans[(s["tokens"][0],)] for s in found]


def test_sentences_puts_document_spans_at_sentence_offsets():
    document = Document("d", [["Ada", "Lovelace", "lived", "."], [], ["She", "met", "Charles", "Babbage", "."]],
                        entities=[Span(0, 2, "PER"), Span(6, 8, "PER")])
    assert bench.sentences([document]) == [
        {"tokens": ["Ada", "Lovelace", "lived", "."], "spans": [[0, 2, "PER"]]},
        {"tokens": ["She", "met", "Charles", "Babbage", "."], "spans": [[2, 4, "PER"]]},
    ]


def test_worker_gives_spanmarker_iob2_tags_of_the_same_spans():
    labels = worker.iob2_labels(["LOC", "PER"])
    assert labels == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    ids = {label: i for i, label in enumerate(labels)}
    tags = worker.iob2_tags(6, [[0, 2, "PER"], [2, 3, "PER"], [4, 6, "LOC"]], ids)
    assert [labels[t] for t in tags] == ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "I-LOC"]


def test_hmtl_overrides_keep_the_updates_of_32_by_2_with_micro_batches():
    args = bench.argparse.Namespace(epochs=2, threads=1, bf16=False, micro_batch_size=None, seed=13)
    paths = {"train": "t", "validation": "v", "test": "e"}
    overrides = bench.hmtl_overrides(paths, args)
    assert overrides["trainer"] == {"num_epochs": 2, "patience": 2, "num_threads": 1, "bf16": False}
    assert overrides["data"] == {"conll03": paths}
    args.micro_batch_size = 4
    trainer = bench.hmtl_overrides(paths, args)["trainer"]
    assert (trainer["batch_size"], trainer["accumulation_steps"]) == (4, 16)
    config = load_config(str(ROOT / "configs" / "span_ner_conll03_system_b.json"), json.dumps(overrides))
    assert config.data["conll03"].train == "t" and sorted(config.data["conll03"].keep_labels) == ["LOC", "ORG", "PER"]
