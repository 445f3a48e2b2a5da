"""RelationF1 against counts worked out by hand."""
import pytest

from hmtl.data.document import Relation, Span
from hmtl.metrics.relation import RelationF1, relation_keys

GOLD = [
    ((0, 1, "Peop"), (3, 4, "Loc"), "Live_In"),
    ((5, 7, "Org"), (3, 4, "Loc"), "OrgBased_In"),
    ((0, 1, "Peop"), (5, 7, "Org"), "Work_For"),
]
PREDICTED = [
    ((0, 1, "Peop"), (3, 4, "Loc"), "Live_In"),          # right in both settings
    ((5, 7, "Peop"), (3, 4, "Loc"), "OrgBased_In"),      # head typed wrong: boundaries only
    ((0, 1, "Peop"), (5, 7, "Org"), "Live_In"),          # wrong label: wrong in both
    ((3, 4, "Loc"), (0, 1, "Peop"), "Live_In"),          # reversed direction: wrong in both
]


def approx(value):
    return pytest.approx(value, abs=1e-3)


def test_strict_and_boundaries_micro_and_macro():
    metric = RelationF1()
    metric.update(PREDICTED, GOLD)
    m = metric.compute()
    # strict: 1 correct of 4 predicted, 3 gold -> P 25, R 33.333, F1 = 2/7 = 28.571
    assert (m["strict_micro_precision"], m["strict_micro_recall"], m["strict_micro_f1"]) == (approx(25), approx(100 / 3), approx(200 / 7))
    # strict per label: Live_In P 1/3 R 1/1 F 50; OrgBased_In 0/1 pred, 0/1 gold -> 0; Work_For 0 -> macro over 3
    assert m["strict_f1_Live_In"] == approx(50) and m["strict_f1_OrgBased_In"] == 0 and m["strict_f1_Work_For"] == 0
    assert (m["strict_macro_precision"], m["strict_macro_recall"], m["strict_macro_f1"]) == (approx(100 / 9), approx(100 / 3), approx(50 / 3))
    # boundaries: the mistyped OrgBased_In now counts: 2 of 4, 2 of 3 -> P 50, R 66.667, F1 = 4/7 = 57.143
    assert (m["boundaries_micro_precision"], m["boundaries_micro_recall"], m["boundaries_micro_f1"]) == (approx(50), approx(200 / 3), approx(400 / 7))
    # per label: Live_In 50, OrgBased_In P 1/1 R 1/1 F 100, Work_For 0 -> macro P (100/3+100+0)/3, R 200/3, F 50
    assert (m["boundaries_macro_precision"], m["boundaries_macro_recall"], m["boundaries_macro_f1"]) == (approx(400 / 9), approx(200 / 3), approx(50))


def test_fixed_label_inventory_changes_only_the_macro_average():
    metric = RelationF1(labels=["Live_In", "OrgBased_In", "Work_For", "Kill", "Located_In"])
    metric.update(PREDICTED, GOLD)
    m = metric.compute()
    assert m["strict_macro_f1"] == approx(50 / 5)   # Live_In 50, four labels 0
    assert m["strict_micro_f1"] == approx(200 / 7)


def test_relation_objects_duplicates_and_separate_updates():
    head, tail = Span(0, 1, "Peop"), Span(3, 4, "Loc")
    metric = RelationF1()
    # the same relation twice counts once; a copy with another head type is a second strict prediction but the
    # same boundaries prediction
    metric.update([Relation(head, tail, "Live_In"), Relation(head, tail, "Live_In"),
                   Relation(Span(0, 1, "Org"), tail, "Live_In")], [Relation(head, tail, "Live_In")])
    # a second sentence: the gold relation there is not matched by the first sentence's prediction
    metric.update([], [((0, 1, "Peop"), (3, 4, "Loc"), "Live_In")])
    m = metric.compute()
    # strict: tp 1, pred 2, gold 2 -> 50/50/50; boundaries: tp 1, pred 1, gold 2 -> P 100, R 50, F 66.667
    assert (m["strict_micro_precision"], m["strict_micro_recall"], m["strict_micro_f1"]) == (approx(50), approx(50), approx(50))
    assert (m["boundaries_micro_precision"], m["boundaries_micro_recall"], m["boundaries_micro_f1"]) == (approx(100), approx(50), approx(200 / 3))


def test_empty_and_unknown_mode():
    metric = RelationF1()
    metric.update([], [])
    assert all(value == 0.0 for value in metric.compute().values())
    assert metric.compute()["strict_macro_f1"] == 0.0
    with pytest.raises(ValueError, match="unknown relation matching mode"):
        relation_keys(GOLD[0], "loose")
