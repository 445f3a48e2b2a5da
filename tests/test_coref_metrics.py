"""MUC, B-cubed and CEAFe against scores worked out by hand (each derivation is in the comments)."""
import itertools
import random

import numpy as np
import pytest

from hmtl.data.document import Span
from hmtl.metrics.coref import CorefMetrics, b_cubed, ceafe, max_weight_assignment, muc


def scores(predicted, gold):
    metrics = CorefMetrics()
    metrics.update(predicted, gold)
    return metrics.compute()


def check(result, name, p, r, f):
    assert result[f"{name}_precision"] == pytest.approx(p, abs=1e-3)
    assert result[f"{name}_recall"] == pytest.approx(r, abs=1e-3)
    assert result[f"{name}_f1"] == pytest.approx(f, abs=1e-3)


def test_pradhan_2014_example():
    # Pradhan et al. (2014), the running example: key {a,b,c} {d,e,f,g}; response {a,b} {c,d} {f,g,h,i}.
    gold = [["a", "b", "c"], ["d", "e", "f", "g"]]
    predicted = [["a", "b"], ["c", "d"], ["f", "g", "h", "i"]]
    result = scores(predicted, gold)
    # MUC recall: {a,b,c} is split into {a,b},{c}: 3-2 = 1; {d,e,f,g} into {d},{e},{f,g}: 4-3 = 1 -> 2/(2+3) = 40.
    # MUC precision: {a,b} whole: 1; {c,d} split in two: 0; {f,g,h,i} into {f,g},{h},{i}: 1 -> 2/(1+1+3) = 40.
    check(result, "muc", 40.0, 40.0, 40.0)
    # B3 recall: (2^2/3 + 1^2/3) + (1^2/4 + 2^2/4) = 5/3 + 5/4 = 35/12 over 7 key mentions = 35/84 = 41.667.
    # B3 precision: 2^2/2 + (1/2 + 1/2) + 2^2/4 = 4 over 8 response mentions = 50; F1 = 2*50*(125/3)/(275/3)
    # = 500/11 = 45.455.
    check(result, "b3", 50.0, 3500 / 84, 500 / 11)
    # CEAFe: phi4(K1,R1) = 4/5, phi4(K1,R2) = 2/5, phi4(K2,R2) = 2/6, phi4(K2,R3) = 4/8; best alignment
    # K1-R1 + K2-R3 = 1.3 -> recall 1.3/2 = 65, precision 1.3/3 = 43.333, F1 = 52.
    check(result, "ceafe", 130 / 3, 65.0, 52.0)
    assert result["avg_f1"] == pytest.approx((40 + 500 / 11 + 52) / 3, abs=1e-3)


def test_perfect_response_including_singletons():
    gold = [[(0, 1), (4, 6)], [(7, 8)]]
    result = scores([[(4, 6), (0, 1)], [(7, 8)]], gold)
    for name in ("muc", "b3", "ceafe"):
        check(result, name, 100.0, 100.0, 100.0)
    assert result["avg_f1"] == pytest.approx(100.0)


def test_empty_response_scores_zero():
    # Recall denominators are positive (MUC 1 link, B3 3 mentions, CEAFe 2 entities), numerators 0; precision
    # denominators are 0, which counts as 0.
    result = scores([], [[(0, 1), (2, 3)], [(5, 6)]])
    for name in ("muc", "b3", "ceafe"):
        check(result, name, 0.0, 0.0, 0.0)
    assert result["avg_f1"] == 0.0
    assert scores([], [])["avg_f1"] == 0.0


def test_missing_gold_singleton_costs_b3_and_ceafe_not_muc():
    gold = [["a", "b"], ["c"]]
    result = scores([["a", "b"]], gold)
    # MUC: the singleton {c} has no link to find: 1/1 both ways.
    check(result, "muc", 100.0, 100.0, 100.0)
    # B3 recall: {a,b}: 2^2/2 = 2, {c}: 0 -> 2/3; precision 2/2 -> F1 = 2 * 2/3 / (5/3) = 80.
    check(result, "b3", 100.0, 200 / 3, 80.0)
    # CEAFe: phi4({a,b},{a,b}) = 1: recall 1/2 key entities, precision 1/1 -> F1 66.667.
    check(result, "ceafe", 100.0, 50.0, 200 / 3)


def test_extra_response_singleton_costs_precision():
    result = scores([["a", "b"], ["d"]], [["a", "b"]])
    check(result, "muc", 100.0, 100.0, 100.0)
    # B3 precision: {a,b}: 2, {d}: 0 (not in the key) over 3 response mentions.
    check(result, "b3", 200 / 3, 100.0, 80.0)
    # CEAFe: similarity 1 over 2 response entities, 1 key entity.
    check(result, "ceafe", 50.0, 100.0, 200 / 3)


def test_mentions_missing_from_either_side():
    # key {a,b,c}, response {a,b,d}: c is missing from the response, d from the key.
    result = scores([["a", "b", "d"]], [["a", "b", "c"]])
    # MUC recall: {a,b,c} -> {a,b},{c}: (3-2)/(3-1) = 50; precision symmetric: {a,b},{d}: 50.
    check(result, "muc", 50.0, 50.0, 50.0)
    # B3: 2^2/3 over 3 mentions = 4/9 both ways.
    check(result, "b3", 400 / 9, 400 / 9, 400 / 9)
    # CEAFe: phi4 = 2*2/(3+3) = 2/3 over one entity each side.
    check(result, "ceafe", 200 / 3, 200 / 3, 200 / 3)


def test_over_merged_response():
    # key {a,b} {c,d}, response {a,b,c,d}.
    result = scores([["a", "b", "c", "d"]], [["a", "b"], ["c", "d"]])
    # MUC recall: each key cluster stays whole: (1+1)/(1+1) = 100; precision: {a,b,c,d} -> {a,b},{c,d}: 2/3.
    check(result, "muc", 200 / 3, 100.0, 80.0)
    # B3 recall: 2^2/2 + 2^2/2 = 4 over 4 = 100; precision: (2^2 + 2^2)/4 = 2 over 4 = 50 -> F1 66.667.
    check(result, "b3", 50.0, 100.0, 200 / 3)
    # CEAFe: only one response entity, phi4 = 2*2/(2+4) = 2/3: recall (2/3)/2, precision (2/3)/1 -> F1 44.444.
    check(result, "ceafe", 200 / 3, 100 / 3, 400 / 9)


def test_corpus_scores_pool_numerators_and_denominators():
    metrics = CorefMetrics()
    metrics.update([[(0, 1), (2, 3)]], [[(0, 1), (2, 3)]])  # perfect: MUC 1/1 both ways
    metrics.update([], [[(0, 1), (2, 3)]])  # nothing found: recall 0/1, precision 0/0
    result = metrics.compute()
    # pooled: recall (1+0)/(1+1) = 50, precision 1/1 = 100 (a per-document average would give 50/50).
    check(result, "muc", 100.0, 50.0, 200 / 3)
    assert metrics.documents == 2
    metrics.reset()
    assert metrics.compute()["avg_f1"] == 0.0


def test_spans_match_by_bounds_and_functions_match_accumulator():
    gold = [[Span(0, 2, "person"), Span(5, 6, "person")]]
    predicted = [[(0, 2), (5, 6)]]
    assert scores(predicted, gold)["avg_f1"] == pytest.approx(100.0)
    for metric in (muc, b_cubed, ceafe):
        assert metric(predicted, gold).f1 == pytest.approx(100.0)


def test_repeated_mentions_count_once_in_their_first_cluster():
    # Reference scorer TC8 (CEAFe part): key {a} {b,c} {d,e,f}; response {a} {b,c,x} {d,y} {b,z}: the second b is
    # removed -> {z}. phi4: {a}-{a} = 1, {b,c}-{b,c,x} = 4/5, {d,e,f}-{d,y} = 2/5 -> 2.2 over 3 key and 4 response
    # entities: recall 73.333, precision 55, F1 = 2*2.2/7 = 62.857.
    gold = [["a"], ["b", "c"], ["d", "e", "f"]]
    result = scores([["a"], ["b", "c", "x"], ["d", "y"], ["b", "z"]], gold)
    check(result, "ceafe", 55.0, 220 / 3, 440 / 7)
    # TC7: the repeat inside one cluster ({b,c,x,b}) gives the same entities as TC4 -> the same score.
    assert scores([["a"], ["b", "c", "x", "b"], ["d", "y"], ["z"]], gold) == scores(
        [["a"], ["b", "c", "x"], ["d", "y"], ["z"]], gold)
    # a cluster left empty by the removal disappears (it would otherwise count as a response entity)
    assert scores([["a", "b"], ["b"]], [["a", "b"]])["avg_f1"] == pytest.approx(100.0)


def test_ceafe_needs_the_optimal_not_the_greedy_alignment():
    # The matcher: greedy takes 0.9 and is left with 0; the optimum pairs the two 0.8 entries.
    total, pairs = max_weight_assignment(np.array([[0.9, 0.8], [0.8, 0.0]]))
    assert total == pytest.approx(1.6)
    assert pairs == [(0, 1), (1, 0)]
    # The same trap in CEAFe: key K1 {a,b,c}, K2 {d}; response R1 {a,b,d}, R2 {c}.
    # phi4(K1,R1) = 2*2/6 = 2/3, phi4(K1,R2) = 2/4, phi4(K2,R1) = 2/4, phi4(K2,R2) = 0.
    # Greedy K1-R1 gives 2/3; the optimum K1-R2 + K2-R1 gives 1 -> recall 1/2, precision 1/2.
    result = scores([["a", "b", "d"], ["c"]], [["a", "b", "c"], ["d"]])
    check(result, "ceafe", 50.0, 50.0, 50.0)


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (3, 2), (4, 4), (5, 3), (3, 6)])
def test_assignment_matches_brute_force(shape):
    rng = random.Random(sum(shape))
    for _ in range(20):
        weights = np.array([[rng.choice([0.0, 0.25, 0.5, rng.random()]) for _ in range(shape[1])] for _ in range(shape[0])])
        n, m = shape
        best = 0.0
        if n <= m:
            for columns in itertools.permutations(range(m), n):
                best = max(best, sum(weights[i, j] for i, j in enumerate(columns)))
        else:
            for rows in itertools.permutations(range(n), m):
                best = max(best, sum(weights[i, j] for j, i in enumerate(rows)))
        total, pairs = max_weight_assignment(weights)
        assert total == pytest.approx(best)
        assert len({i for i, _ in pairs}) == len(pairs) == len({j for _, j in pairs}) == min(n, m)


def test_ceafe_on_many_singletons_is_fast_and_exact():
    # 2000 gold singletons, the response finds every other one and merges nothing.
    gold = [[(i, i + 1)] for i in range(2000)]
    predicted = [[(i, i + 1)] for i in range(0, 2000, 2)]
    result = scores(predicted, gold)
    check(result, "ceafe", 100.0, 50.0, 200 / 3)
    check(result, "muc", 0.0, 0.0, 0.0)  # no links anywhere


KEY_TC = [["a"], ["b", "c"], ["d", "e", "f"]]


@pytest.mark.parametrize("response, common", [
    # CEAFe cases TC1-TC4 of the reference scorer's test notes; common = the aligned phi4 total.
    ([["a"], ["b", "c"], ["d", "e", "f"]], 3.0),               # perfect
    ([["a"], ["d", "e"]], 1 + 4 / 5),                          # missing mentions and entities
    ([["a"], ["b", "c", "x"], ["d", "e", "f", "y"], ["z"]], 1 + 4 / 5 + 6 / 7),  # false alarms
    ([["a"], ["b", "c", "x"], ["d", "y"], ["z"]], 1 + 4 / 5 + 2 / 5),            # both
])
def test_reference_scorer_ceafe_cases(response, common):
    recall, precision = 100 * common / 3, 100 * common / len(response)
    check(scores(response, KEY_TC), "ceafe", precision, recall, 2 * precision * recall / (precision + recall))
