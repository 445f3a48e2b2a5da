"""Events: the Document layer, DyGIE++'s metrics on hand-computed cases, the dygie / eeqa / brat readers on small
fixtures (and their one-line errors), the event head learning a toy corpus and scoring a held-out document, and
its prediction output."""
import json
import os
from pathlib import Path

import pytest
import torch

from hmtl.checks import parse_config
from hmtl.data.document import Document, Event, Span
from hmtl.data.readers.conll import DygieReader
from hmtl.data.readers.eeqa import EeqaReader
from hmtl.data.readers.standoff import BratReader
from hmtl.errors import ConfigError, DataFormatError
from hmtl.metrics.event import EventF1
from hmtl.model import HierarchicalModel
from hmtl.training.evaluation import evaluate
from hmtl.training.trainer import build_labels
from conftest import assert_names, train_heads


def event(trigger, *arguments):
    return Event(Span(*trigger), tuple(Span(*a) for a in arguments))


# ---------------------------------------------------------------- metrics (DyGIE++'s definitions)

GOLD = [event((2, 3, "Attack"), (0, 1, "Attacker"), (4, 5, "Target")), event((6, 7, "Die"), (4, 5, "Victim"))]


def scores(predicted, gold=GOLD):
    metric = EventF1()
    metric.update(predicted, gold, key=("doc", 0))
    return {k: round(v, 2) for k, v in metric.compute().items()}


def test_a_right_trigger_with_one_right_argument_and_one_wrong_role():
    # (4, 5) as Victim of an Attack: its span and event type are a gold argument's (Target), its role is not
    s = scores([event((2, 3, "Attack"), (0, 1, "Attacker"), (4, 5, "Victim"))])
    assert (s["trig_id_precision"], s["trig_id_recall"]) == (100.0, 50.0)
    assert (s["trig_class_precision"], s["trig_class_recall"]) == (100.0, 50.0)
    assert (s["arg_id_precision"], s["arg_id_recall"]) == (100.0, 66.67)  # 2 of 2 predicted, 2 of 3 gold
    assert (s["arg_class_precision"], s["arg_class_recall"]) == (50.0, 33.33)
    assert s["arg_class_f1_Attacker"] == 100.0 and s["arg_class_f1_Victim"] == 0.0


def test_a_trigger_of_the_right_type_at_the_wrong_span_still_earns_its_arguments():
    s = scores([event((3, 4, "Attack"), (0, 1, "Attacker"))])
    assert s["trig_id_f1"] == 0.0 and s["trig_class_f1"] == 0.0
    assert (s["arg_id_precision"], s["arg_id_recall"]) == (100.0, 33.33)
    assert (s["arg_class_precision"], s["arg_class_recall"]) == (100.0, 33.33)


def test_an_argument_attached_to_a_trigger_of_another_type_is_not_identified():
    s = scores([event((6, 7, "Die"), (0, 1, "Attacker"))])  # the Attacker of a Die event: no gold has it
    assert (s["trig_class_precision"], s["trig_class_recall"]) == (100.0, 50.0)
    assert s["arg_id_precision"] == 0.0 and s["arg_class_precision"] == 0.0


def test_a_right_trigger_span_with_the_wrong_type_is_identified_only():
    s = scores([event((6, 7, "Attack"))])
    assert s["trig_id_precision"] == 100.0 and s["trig_class_precision"] == 0.0


def test_duplicate_predictions_count_once():
    twice = event((6, 7, "Die"), (4, 5, "Victim"), (4, 5, "Victim"))
    s = scores([twice, twice, event((8, 9, "Die"), (4, 5, "Victim"))])  # the same argument under two Die triggers
    assert (s["trig_id_precision"], s["trig_id_recall"]) == (50.0, 50.0)  # {(6, 7), (8, 9)} against 2 gold
    assert (s["arg_class_precision"], s["arg_class_recall"]) == (100.0, 33.33)  # one (span, Die, Victim)
    # one span under two roles of one event type is one identification, in the gold as in the predictions
    both = [event((2, 3, "Attack"), (4, 5, "Target"), (4, 5, "Attacker"))]
    s = scores(both, gold=both)
    assert s["arg_id_f1"] == 100.0 and s["arg_class_f1"] == 100.0
    metric = EventF1()
    metric.update(both, both)
    assert metric.levels["arg_id"].gold["Attack"] == 1 and metric.levels["arg_class"].gold["Attack"] == 0


def test_units_never_match_each_other():
    metric = EventF1()
    metric.update(GOLD, [], key=1)
    metric.update([], GOLD, key=2)
    assert metric.compute()["arg_class_f1"] == 0.0 and metric.compute()["trig_id_f1"] == 0.0


# ---------------------------------------------------------------- Document layer

def test_validate_refuses_an_argument_outside_the_triggers_sentence():
    document = Document("d", [["a", "b"], ["c", "d"]], events=[event((0, 1, "E"), (1, 2, "R"))])
    document.validate()
    document.events = [event((0, 1, "E"), (1, 3, "R"))]
    with pytest.raises(ValueError, match=r"event argument .* is not inside the trigger's sentence \(tokens 0..1\)"):
        document.validate()
    document.events = [event((3, 5, "E"))]
    with pytest.raises(ValueError, match="ends after the last token"):
        document.validate()
    document.events = [event((0, 1, "E"), (0, 1, None))]
    with pytest.raises(ValueError, match="has no role"):
        document.validate()


# ---------------------------------------------------------------- dygie reader

DYGIE = {
    "doc_key": "d1",
    "sentences": [["Aspirin", "caused", "a", "rash", "."], ["The", "child", "took", "ibuprofen", "and", "vomited", "."]],
    "ner": [[[0, 0, "Drug"]], []],
    # document-level, inclusive; a DyGIE++ one-token trigger [token, type], a trigger span [start, end, type]
    "events": [
        [[[1, "Adverse_event"], [0, 0, "Treatment"], [2, 3, "Effect"]]],
        [[[9, 9, "Adverse_event"], [7, 8, "Treatment"], [8, 8, "Treatment.Drug"], [5, 6, "Subject"]],
         [[7, 8, "Potential_therapeutic_event"]]],
    ],
}


def write_lines(path: Path, *records) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def test_dygie_reads_events_with_one_token_and_span_triggers(tmp_path):
    (document,) = DygieReader().read(write_lines(tmp_path / "events.json", DYGIE))
    assert document.events == [
        event((1, 2, "Adverse_event"), (0, 1, "Treatment"), (2, 4, "Effect")),
        event((9, 10, "Adverse_event"), (7, 9, "Treatment"), (8, 9, "Treatment.Drug"), (5, 7, "Subject")),
        event((7, 9, "Potential_therapeutic_event")),
    ]
    assert document.entities == [Span(0, 1, "Drug")]


@pytest.mark.parametrize("events, message", [
    ([[], [[[9, "Adverse_event"], [1, 1, "Treatment"]]]], "sentence 1: event 0's argument [1, 1, 'Treatment'] is outside its sentence"),
    ([[[[6, "Adverse_event"]]], []], "sentence 0: event 0's trigger [6, 'Adverse_event'] is outside its sentence"),
    ([[], [[[9, "Adverse_event"], [7, 8]]]], "sentence 1: event 0: expected arguments [start, end, role], found [7, 8] (is the role missing?)"),
    ([[], [[[9, 9], [7, 8, "Treatment"]]]], "sentence 1: event 0: expected its trigger as [token, type] or [start, end, type], found [9, 9] (is the type missing?)"),
    ([[], [[]]], "sentence 1: event 0: expected [trigger, argument, ...]"),
    ([[]], "expected 'events' to hold one list per sentence (2)"),
])
def test_dygie_event_errors_name_file_line_and_event(tmp_path, events, message):
    path = write_lines(tmp_path / "bad.json", {"sentences": [["x"]]}, {**DYGIE, "events": events})
    with pytest.raises(DataFormatError) as error:
        DygieReader().read(path)
    assert_names(error.value, path, 2)
    assert message in str(error.value)


# ---------------------------------------------------------------- eeqa reader (PHEE)

def test_eeqa_reads_a_sentence_a_line_dropping_blank_tokens_and_shifting_by_s_start(tmp_path):
    phee = {"sentence": ["Phenobarbital", "hepatotoxicity", "in", " ", "an", "8", "-", "month", "-", "old", "infant", "."],
            "s_start": 0, "ner": [], "relation": [], "id": "2332596_1",
            "event": [[[2, 2, "Adverse_event"], [3, 10, "Subject"], [5, 10, "Subject.Age"], [1, 1, "Effect"],
                       [0, 0, "Treatment"], [0, 0, "Treatment.Drug"], [1, 3, "Blank_end"]]]}
    later = {"sentence": ["Heparin", "-", "induced", "thrombocytopenia"], "s_start": 20, "id": "x_2",
             "event": [[[21, 22, "Adverse_event"], [23, 23, "Effect"]]]}
    first, second = EeqaReader().read(write_lines(tmp_path / "train.eeqa.json", phee, later))
    assert first.doc_id == "2332596_1" and first.sentences == [[t for t in phee["sentence"] if t != " "]]
    # the blank token 3 is gone: "an 8-month-old infant" is 3..10, "8-month-old infant" 4..10 (end-exclusive); a
    # span starting at a blank token starts at the next one, a span ending at one ends at the one before
    assert first.events == [event((2, 3, "Adverse_event"), (3, 10, "Subject"), (4, 10, "Subject.Age"),
                                  (1, 2, "Effect"), (0, 1, "Treatment"), (0, 1, "Treatment.Drug"), (1, 3, "Blank_end"))]
    assert second.events == [event((1, 3, "Adverse_event"), (3, 4, "Effect"))]  # "- induced"; offsets - s_start


def test_eeqa_errors_name_file_and_line(tmp_path):
    path = write_lines(tmp_path / "bad.eeqa.json", {"sentence": ["a", "b"], "event": [[[0, 0, "E"], [1, 2, "R"]]]})
    with pytest.raises(DataFormatError) as error:
        EeqaReader().read(path)
    assert_names(error.value, path, 1)
    assert "event 0's argument [1, 2, 'R'] is outside its sentence" in str(error.value)
    path = write_lines(tmp_path / "worse.eeqa.json", {"sentences": [["a"]]})
    with pytest.raises(DataFormatError, match=r"worse.eeqa.json:1: expected an object with a 'sentence' key"):
        EeqaReader().read(path)


# ---------------------------------------------------------------- brat E lines

BRAT_TXT = "Aspirin caused a rash.\nHeparin prevented it.\n"
#           0       8      15 17   22 23      31        41
BRAT_ANN = (
    "T1\tDrug 0 7\tAspirin\n"
    "T2\tAdverse_event 8 14\tcaused\n"
    "T3\tEffect 17 21\trash\n"
    "E1\tAdverse_event:T2 Treatment:T1 Effect:T3\n"
    "T4\tDrug 23 30\tHeparin\n"
    "E2\tPrevention:T5 Agent:T4 Theme:E1\n"  # an event argument, and its trigger written after it
    "T5\tPrevention 31 40\tprevented\n"
)


def brat(tmp_path, ann=BRAT_ANN) -> Path:
    (tmp_path / "doc.txt").write_text(BRAT_TXT)
    (tmp_path / "doc.ann").write_text(ann)
    return tmp_path / "doc.ann"


def test_brat_reads_events_and_joins_the_sentences_an_event_spans(tmp_path):
    (document,) = BratReader().read(brat(tmp_path))
    # E2 reaches from "Heparin prevented" back to E1's trigger "caused": one sentence
    assert document.sentences == [["Aspirin", "caused", "a", "rash", ".", "Heparin", "prevented", "it", "."]]
    assert document.events == [
        event((1, 2, "Adverse_event"), (0, 1, "Treatment"), (3, 4, "Effect")),
        event((6, 7, "Prevention"), (5, 6, "Agent"), (1, 2, "Theme")),
    ]
    assert len(document.entities) == 5  # triggers stay entities; the events add none


@pytest.mark.parametrize("line, message", [
    ("E3\tAdverse_event:T9 Treatment:T1", "event E3: trigger 'T9' is not the id of a T (text-bound) annotation"),
    ("E3\tAdverse_event:T2 Treatment:T9", "event E3: Treatment 'T9' is neither a T nor an E id of this file"),
    ("E3\tAdverse_event", "expected 'E<id><TAB>Type:<T id> Role:<id> ...'"),
    ("E1\tAdverse_event:T2", "annotation id 'E1' is used twice"),
])
def test_brat_event_errors_name_the_ann_line(tmp_path, line, message):
    path = brat(tmp_path, BRAT_ANN + line + "\n")
    with pytest.raises(DataFormatError) as error:
        BratReader().read(path)
    assert_names(error.value, path, 8)
    assert message in str(error.value)


# ---------------------------------------------------------------- the event head

DRUGS, EFFECTS, SUBJECTS = ["aspirin", "ibuprofen", "cisplatin", "heparin"], [["rash"], ["severe", "nausea"], ["fever"]], ["child", "woman", "man"]


def toy_sentence(drug: str, effect: list[str], subject: str, kind: int) -> tuple[list[str], list[Event]]:
    """Three patterns: an adverse event with a subject, a therapeutic event, no event."""
    if kind == 0:
        tokens = [drug, "caused", *effect, "in", "a", subject, "."]
        n = len(effect)
        return tokens, [event((1, 2, "Adverse"), (0, 1, "Treatment"), (0, 1, "Treatment.Drug"), (2, 2 + n, "Effect"),
                              (3 + n, 5 + n, "Subject"))]
    if kind == 1:
        return ["the", subject, "took", drug, "against", *effect, "."], [
            event((4, 5, "Therapeutic"), (3, 4, "Treatment.Drug"), (5, 5 + len(effect), "Effect"))]
    return ["the", subject, "slept", "well", "."], []


def toy_document(doc_id: str, combinations) -> Document:
    sentences, events, offset = [], [], 0
    for combination in combinations:
        tokens, found = toy_sentence(*combination)
        events += [Event(Span(e.trigger.start + offset, e.trigger.end + offset, e.trigger.label),
                         tuple(Span(a.start + offset, a.end + offset, a.label) for a in e.arguments)) for e in found]
        sentences.append(tokens)
        offset += len(tokens)
    return Document(doc_id, sentences, events=events)


EVENT_CONFIG = {
    "data": {"toy": {"reader": "dygie"}},
    "embedder": {"char_cnn": {"embedding_dim": 8, "num_filters": 8}, "dropout": 0.0},
    "levels": [{"name": "a", "hidden_size": 24, "dropout": 0.0}, {"name": "b", "hidden_size": 24, "dropout": 0.0}],
    "tasks": [{"name": "events", "type": "event", "level": "b", "datasets": ["toy"],
               "options": {"dropout": 0.0, "hidden_size": 64, "max_argument_width": 4}}],
}


def test_the_event_head_learns_a_toy_corpus_and_scores_a_held_out_document():
    torch.manual_seed(0)
    config = parse_config(EVENT_CONFIG)
    training = toy_document("train", [(d, e, s, k) for k in range(3) for d, e, s in zip(DRUGS, EFFECTS * 2, SUBJECTS * 2)])
    held_out = toy_document("test", [("warfarin", ["headache"], "girl", 0), ("insulin", ["severe", "fever"], "boy", 1),
                                     ("the", [], "boy", 2), ("penicillin", ["rash"], "woman", 0)])
    model = HierarchicalModel(config, build_labels(config, {"toy": [training]}))
    train_heads(model, {"events": model.prepare(model.task("events").instances([training], "toy"))}, 80, 5e-3)
    test = {"events": model.prepare(model.task("events").instances([held_out], "toy"))}
    metrics = evaluate(model, test, batch_size=8)
    assert metrics["MEAN__events_trig_class_f1"] == 100.0, metrics
    assert metrics["MEAN__events_arg_class_f1"] >= 90.0, metrics
    assert metrics["MEAN__all"] == metrics["MEAN__events_arg_class_f1"]  # the first metric selects models


def test_an_event_head_on_two_datasets_keeps_a_head_per_namespace():
    config = parse_config({**EVENT_CONFIG, "data": {"a": {"reader": "dygie"}, "b": {"reader": "eeqa"}},
                           "tasks": [{**EVENT_CONFIG["tasks"][0], "datasets": ["a", "b"]}]})
    a = toy_document("a", [("aspirin", ["rash"], "man", 0)])
    b = toy_document("b", [("aspirin", ["rash"], "man", 1)])
    labels = build_labels(config, {"a": [a], "b": [b]})["tasks"]["events"]
    assert labels["a__events"] == {"triggers": ["O", "Adverse"], "roles": ["Effect", "Subject", "Treatment", "Treatment.Drug"]}
    assert labels["b__events"] == {"triggers": ["O", "Therapeutic"], "roles": ["Effect", "Treatment.Drug"]}
    task = HierarchicalModel(config, build_labels(config, {"a": [a], "b": [b]})).task("events")
    assert set(task.role_classifiers) == set(task.argument_scorers) == set(task.classifiers) == {"a__events", "b__events"}
    assert task.entity_types("a__events") is None  # triggers are no entities
    predicted = [event((0, 1, "Adverse"), (1, 2, "Effect"))]
    assert task.relabel(predicted, lambda label: None) == predicted  # predict's keep_labels maps entity types only


def test_event_options_are_checked_with_their_dotted_key():
    bad = {**EVENT_CONFIG, "tasks": [{**EVENT_CONFIG["tasks"][0], "options": {"argument_ratio": 0}}]}
    with pytest.raises(ConfigError, match=r"tasks.events.options.argument_ratio: Input should be greater than 0"):
        parse_config(bad)
    bad["tasks"][0]["options"] = {"unit": "document"}
    with pytest.raises(ConfigError, match=r"tasks.events.options.unit"):
        parse_config(bad)


def test_predicted_events_export_text_labels_and_offsets(monkeypatch):
    from hmtl.predict import Predictor

    config = parse_config(EVENT_CONFIG)
    model = HierarchicalModel(config, build_labels(config, {"toy": [toy_document("t", [("aspirin", ["rash"], "man", 0)])]}))
    predicted = [event((1, 2, "Adverse"), (0, 1, "Treatment.Drug"), (2, 4, "Effect"))]
    monkeypatch.setattr(model.task("events"), "decode",
                        lambda states, mask, batch: [predicted if len(i.tokens) == 5 else [] for i in batch.instances])
    output = Predictor(model).predict("Hello there.\nAspirin caused severe rash.", namespaces=["toy__events"])
    assert output["toy__events"] == {"events": [{
        "trigger": {"text": "caused", "label": "Adverse", "start_char": 21, "end_char": 27, "start": 4, "end": 5},
        "arguments": [
            {"text": "Aspirin", "label": "Treatment.Drug", "start_char": 13, "end_char": 20, "start": 3, "end": 4},
            {"text": "severe rash", "label": "Effect", "start_char": 28, "end_char": 39, "start": 5, "end": 7},
        ],
    }]}


DATA = Path(os.environ.get("HMTL_DATA_DIR", "data"))


@pytest.mark.skipif(not (DATA / "phee").is_dir(), reason="PHEE not set up (bash scripts/data_setup.sh phee)")
def test_the_real_phee_dev_split_reads_with_its_published_counts():
    documents = EeqaReader().read(DATA / "phee" / "dev.eeqa.json")
    events = [e for document in documents for e in document.events]
    assert len(documents) == 961 and len(events) == 1003
    assert sum(e.trigger.label == "Adverse_event" for e in events) == 886
    assert sum(e.trigger.end - e.trigger.start == 2 for e in events) == 42  # triggers of 2 tokens (README)


def test_the_event_and_classifier_heads_make_no_tensor_off_their_device():
    from test_device import tensors_made_off_the_device

    config = parse_config({**EVENT_CONFIG, "tasks": [
        *EVENT_CONFIG["tasks"], {"name": "topic", "type": "classifier", "level": "a", "datasets": ["toy"]}]})
    document = toy_document("d", [("aspirin", ["rash"], "man", 0), ("heparin", ["fever"], "child", 1)])
    document.sentence_labels = [["adverse"], ["therapeutic"]]
    model = HierarchicalModel(config, build_labels(config, {"toy": [document]}))
    batches = [model.collate([(name, found)]) for name, found in model.task_instances({"toy": [document]}).items()]
    assert not tensors_made_off_the_device(model, batches)
