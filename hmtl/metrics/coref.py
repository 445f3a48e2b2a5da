"""Coreference metrics with the semantics of the CoNLL-2012 reference scorer (Pradhan et al., 2014):
MUC (Vilain et al., 1995), B-cubed (Bagga & Baldwin, 1998) and entity-level CEAF with the phi4 similarity
(CEAFe, Luo 2005), plus their average, the "CoNLL F1".

Conventions, as in the reference scorer:

- A mention is any hashable value (``(start, end)``, ``(sentence, start, end)``, ...); an object with a ``bounds``
  attribute (``hmtl.data.document.Span``) is reduced to its bounds, so mentions match by exact boundaries only
  and a mention's type never matters.
- Key (gold) and response (predicted) mentions need not be the same set: a key mention missing from the response
  costs recall, a response mention missing from the key costs precision. Nothing is aligned or dropped first.
- Singletons: B-cubed and CEAFe count every cluster present in the key or the response, singletons included
  (so a reader that drops singletons, like OntoNotes, changes these two scores). MUC counts links, so a
  singleton contributes nothing to it whichever side it is on.
- Scores over a corpus are micro-averaged the way the scorer does it: numerators and denominators are summed
  over documents, then divided once.
- Every score is in percent; a ratio with a zero denominator is 0, and F1 is 0 when precision + recall is 0.

A mention repeated on one side counts once, in the first cluster that holds it: the reference scorer removes
later repeats of a response mention the same way (its test cases TC7/TC8). Empty clusters are ignored.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Iterable, Sequence

import numpy as np

Clusters = Iterable[Iterable[Hashable]]


@dataclass
class Score:
    """Summed numerators and denominators of one metric: precision = p_num / p_den, recall = r_num / r_den."""

    p_num: float = 0.0
    p_den: float = 0.0
    r_num: float = 0.0
    r_den: float = 0.0

    def __iadd__(self, other: "Score") -> "Score":
        self.p_num += other.p_num
        self.p_den += other.p_den
        self.r_num += other.r_num
        self.r_den += other.r_den
        return self

    @property
    def precision(self) -> float:
        return 100.0 * self.p_num / self.p_den if self.p_den else 0.0

    @property
    def recall(self) -> float:
        return 100.0 * self.r_num / self.r_den if self.r_den else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def _mention(mention: Hashable) -> Hashable:
    bounds = getattr(mention, "bounds", None)
    return bounds if bounds is not None else mention


def normalize_clusters(clusters: Clusters) -> list[frozenset]:
    """Clusters as frozensets of mentions (``Span`` reduced to its bounds). A mention already seen in an
    earlier cluster is dropped from later ones; clusters left empty are dropped."""
    result: list[frozenset] = []
    seen: set = set()
    for cluster in clusters:
        members = frozenset(_mention(m) for m in cluster) - seen
        if members:
            seen |= members
            result.append(members)
    return result


def _cluster_of(clusters: Sequence[frozenset]) -> dict:
    return {mention: index for index, cluster in enumerate(clusters) for mention in cluster}


def _muc_side(keys: Sequence[frozenset], responses: Sequence[frozenset]) -> tuple[float, float]:
    """Vilain et al.: for each key cluster K, |K| - |partitions of K by the response| over |K| - 1, where a
    mention absent from the response is a partition of its own."""
    owner = _cluster_of(responses)
    numerator = denominator = 0
    for cluster in keys:
        parts = {owner.get(mention, ("missing", mention)) for mention in cluster}
        numerator += len(cluster) - len(parts)
        denominator += len(cluster) - 1
    return numerator, denominator


def muc(predicted: Clusters, gold: Clusters) -> Score:
    gold, predicted = normalize_clusters(gold), normalize_clusters(predicted)
    r_num, r_den = _muc_side(gold, predicted)
    p_num, p_den = _muc_side(predicted, gold)
    return Score(p_num, p_den, r_num, r_den)


def _b3_side(keys: Sequence[frozenset], responses: Sequence[frozenset]) -> tuple[float, float]:
    """Sum over key clusters K and response clusters R of |K & R|^2 / |K|, over the number of key mentions:
    each key mention m scores |K(m) & R(m)| / |K(m)|, and 0 when the response lacks it."""
    owner = _cluster_of(responses)
    numerator = 0.0
    for cluster in keys:
        overlaps: dict[int, int] = {}
        for mention in cluster:
            if mention in owner:
                overlaps[owner[mention]] = overlaps.get(owner[mention], 0) + 1
        numerator += sum(n * n for n in overlaps.values()) / len(cluster)
    return numerator, sum(len(cluster) for cluster in keys)


def b_cubed(predicted: Clusters, gold: Clusters) -> Score:
    gold, predicted = normalize_clusters(gold), normalize_clusters(predicted)
    r_num, r_den = _b3_side(gold, predicted)
    p_num, p_den = _b3_side(predicted, gold)
    return Score(p_num, p_den, r_num, r_den)


def max_weight_assignment(weights: np.ndarray) -> tuple[float, list[tuple[int, int]]]:
    """Maximum-weight matching of rows to columns (each used at most once) of a non-negative matrix, with the
    Hungarian (Kuhn-Munkres) algorithm in its O(n^2 m) shortest-augmenting-path form, the inner loop vectorised.
    Returns the total weight and the matched (row, column) pairs."""
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 2:
        raise ValueError(f"expected a matrix, got shape {weights.shape}")
    if weights.size == 0:
        return 0.0, []
    transposed = weights.shape[0] > weights.shape[1]
    cost = -(weights.T if transposed else weights)  # minimise the negated weights; rows <= columns
    n, m = cost.shape
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    row_of = np.zeros(m + 1, dtype=np.int64)  # row_of[j]: 1-based row matched to column j (0: none)
    way = np.zeros(m + 1, dtype=np.int64)
    for row in range(1, n + 1):
        row_of[0] = row
        column = 0
        min_slack = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[column] = True
            current_row = row_of[column]
            free = ~used[1:]
            slack = cost[current_row - 1] - u[current_row] - v[1:]
            better = free & (slack < min_slack[1:])
            min_slack[1:][better] = slack[better]
            way[1:][better] = column
            candidates = np.where(free, min_slack[1:], np.inf)
            next_column = int(np.argmin(candidates)) + 1
            delta = candidates[next_column - 1]
            u[row_of[used]] += delta
            v[used] -= delta
            min_slack[1:][free] -= delta
            column = next_column
            if row_of[column] == 0:
                break
        while column:  # augment along the alternating path
            previous = way[column]
            row_of[column] = row_of[previous]
            column = previous
    pairs = [(int(row_of[j]) - 1, j - 1) for j in range(1, m + 1) if row_of[j]]
    if transposed:
        pairs = [(j, i) for i, j in pairs]
    pairs.sort()
    return float(sum(weights[i, j] for i, j in pairs)), pairs


def _phi4(key: frozenset, response: frozenset) -> float:
    return 2.0 * len(key & response) / (len(key) + len(response))


def ceafe(predicted: Clusters, gold: Clusters) -> Score:
    """Luo (2005) with phi4(K, R) = 2 |K & R| / (|K| + |R|): the best one-to-one alignment of key and response
    clusters; recall divides its total similarity by the number of key clusters, precision by the number of
    response clusters. Clusters that share no mention have similarity 0, so the alignment is solved separately
    on each connected component of the overlap graph (cheap even with thousands of singletons)."""
    gold, predicted = normalize_clusters(gold), normalize_clusters(predicted)
    owner = _cluster_of(predicted)
    edges: dict[int, set[int]] = {}
    for k, cluster in enumerate(gold):
        edges[k] = {owner[mention] for mention in cluster if mention in owner}
    # connected components over key clusters, joined through shared response clusters
    response_to_keys: dict[int, list[int]] = {}
    for k, responses in edges.items():
        for r in responses:
            response_to_keys.setdefault(r, []).append(k)
    seen_keys: set[int] = set()
    total = 0.0
    for start in range(len(gold)):
        if start in seen_keys or not edges[start]:
            continue
        keys, responses, stack = [], set(), [start]
        seen_keys.add(start)
        while stack:
            k = stack.pop()
            keys.append(k)
            for r in edges[k]:
                if r not in responses:
                    responses.add(r)
                    for other in response_to_keys[r]:
                        if other not in seen_keys:
                            seen_keys.add(other)
                            stack.append(other)
        responses_list = sorted(responses)
        if len(keys) == 1 or len(responses_list) == 1:
            total += max(_phi4(gold[k], predicted[r]) for k in keys for r in responses_list)
            continue
        matrix = np.array([[_phi4(gold[k], predicted[r]) for r in responses_list] for k in keys])
        total += max_weight_assignment(matrix)[0]
    return Score(total, len(predicted), total, len(gold))


METRICS = {"muc": muc, "b3": b_cubed, "ceafe": ceafe}


class CorefMetrics:
    """Accumulates MUC, B-cubed and CEAFe over documents; ``update`` once per document (mentions of different
    documents must never be compared). ``compute`` gives ``{muc,b3,ceafe}_{precision,recall,f1}`` and
    ``avg_f1`` (the CoNLL score: the mean of the three F1), all in percent."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.scores = {name: Score() for name in METRICS}
        self.documents = 0

    def update(self, predicted_clusters: Clusters, gold_clusters: Clusters) -> None:
        predicted = normalize_clusters(predicted_clusters)
        gold = normalize_clusters(gold_clusters)
        for name, metric in METRICS.items():
            self.scores[name] += metric(predicted, gold)
        self.documents += 1

    def compute(self) -> dict[str, float]:
        result: dict[str, float] = {}
        for name, score in self.scores.items():
            result[f"{name}_precision"] = score.precision
            result[f"{name}_recall"] = score.recall
            result[f"{name}_f1"] = score.f1
        result["avg_f1"] = sum(result[f"{name}_f1"] for name in METRICS) / len(METRICS)
        return result
