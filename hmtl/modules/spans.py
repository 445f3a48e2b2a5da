"""Spans for the upper tasks: enumeration up to a maximum width, representations (end points + width embedding +
attention-weighted tokens, Lee et al. 2017), scoring and pruning to the best k per word."""
from __future__ import annotations

import torch
from torch import nn


def enumerate_spans(sentence_lengths: list[int], max_width: int) -> list[tuple[int, int]]:
    """All (start, end-exclusive) spans of at most ``max_width`` tokens that stay inside one sentence."""
    spans, offset = [], 0
    for length in sentence_lengths:
        for start in range(offset, offset + length):
            for end in range(start + 1, min(start + max_width, offset + length) + 1):
                spans.append((start, end))
        offset += length
    return spans


def span_count(sentence_lengths: list[int], max_width: int) -> int:
    """``len(enumerate_spans(sentence_lengths, max_width))`` without enumerating: known on the host, so pruning
    need not read a mask back from the device."""
    return sum(w * (n + 1) - w * (w + 1) // 2 for n in sentence_lengths for w in [min(n, max_width)])


def span_tensor(batch_spans: list[list[tuple[int, int]]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad lists of spans to (B, S, 2) with a (B, S) mask."""
    most = max(1, max(len(spans) for spans in batch_spans))
    tensor = torch.zeros(len(batch_spans), most, 2, dtype=torch.long)
    mask = torch.zeros(len(batch_spans), most, dtype=torch.bool)
    for b, spans in enumerate(batch_spans):
        if spans:
            tensor[b, : len(spans)] = torch.tensor(spans)
            mask[b, : len(spans)] = True
    tensor[..., 1] = torch.where(mask, tensor[..., 1], torch.ones_like(tensor[..., 1]))
    return tensor, mask


def feedforward(input_dim: int, hidden: int, output: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(input_dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, output))


class SpanExtractor(nn.Module):
    """g = [h_start ; h_end ; width embedding ; attention-weighted sum of the span's tokens].

    The attention sums come from prefix sums of exp(score) and exp(score) * h (in float64, after subtracting the
    maximum score), so a document's tens of thousands of spans cost O(spans x dim), not O(spans x width x dim).
    A scorer over every enumerated span (``score``) never builds the representations at all: see ``project``.
    """

    def __init__(self, input_dim: int, max_width: int, width_dim: int = 20):
        super().__init__()
        self.max_width = max_width
        self.width = nn.Embedding(max_width + 1, width_dim)
        self.attention = nn.Linear(input_dim, 1)
        self.output_dim = 3 * input_dim + width_dim

    def forward(self, states: torch.Tensor, spans: torch.Tensor) -> torch.Tensor:
        """states (B, T, D), spans (B, S, 2) end-exclusive -> (B, S, output_dim)."""
        starts, ends = spans[..., 0], spans[..., 1]
        return torch.cat([_gather(states, starts), _gather(states, ends - 1), self.width(self._widths(spans)),
                          self._attend(states, states, spans)], dim=-1)

    def project(self, states: torch.Tensor, spans: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
        """``layer(self(states, spans))``, (B, S, layer.out_features), computed block by block: the layer is linear,
        so W [h_s ; h_e ; w ; a] = W_s h_s + W_e h_e + W_w w + W_a a, and W_a of an attention-weighted sum of
        tokens is the same weighted sum of W_a h. Each block is applied once per token instead of once per span
        (a document has ten spans per token), and no (B, S, output_dim) tensor is made."""
        dim = states.size(-1)
        w_start, w_end, w_width, w_attended = layer.weight.split([dim, dim, self.width.embedding_dim, dim], dim=1)
        starts, ends = spans[..., 0], spans[..., 1]
        return (_gather(nn.functional.linear(states, w_start, layer.bias), starts)
                + _gather(nn.functional.linear(states, w_end), ends - 1)
                + nn.functional.linear(self.width.weight, w_width)[self._widths(spans)]
                + self._attend(states, nn.functional.linear(states, w_attended), spans))

    def score(self, states: torch.Tensor, spans: torch.Tensor, network: nn.Sequential) -> torch.Tensor:
        """``network(self(states, spans))`` for a feedforward ``network`` whose first layer is linear (``project``)."""
        return network[1:](self.project(states, spans, network[0]))

    def _widths(self, spans: torch.Tensor) -> torch.Tensor:
        return (spans[..., 1] - 1 - spans[..., 0]).clamp(0, self.max_width)

    def _attend(self, states: torch.Tensor, values: torch.Tensor, spans: torch.Tensor) -> torch.Tensor:
        """The attention-weighted mean of ``values`` (B, T, V) over each span's tokens, weights from ``states``."""
        scores = self.attention(states).double()
        weights = torch.exp((scores - scores.amax(dim=1, keepdim=True)).clamp(min=-60))  # (B, T, 1)
        prefix = torch.cat([weights, weights * values.double()], dim=-1).cumsum(dim=1)
        prefix = nn.functional.pad(prefix, (0, 0, 1, 0))  # prefix[:, t] = sum over tokens before t
        inside = _gather(prefix, spans[..., 1]) - _gather(prefix, spans[..., 0])
        return (inside[..., 1:] / inside[..., :1].clamp(min=1e-300)).to(values.dtype)


def _gather(table: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Rows of ``table`` (B, T, D) at ``positions`` (B, S) -> (B, S, D)."""
    return table.gather(1, positions.unsqueeze(-1).expand(-1, -1, table.size(-1)))


class PairScorer(nn.Module):
    """feedforward([g_i ; g_j ; g_i * g_j ; distance embedding]) -> score, for every mention i and its candidate
    antecedents j. The first layer is applied block by block (W [a; b; c] = W_a a + W_b b + W_c c), so the g_i and
    g_j parts are computed once per mention instead of once per pair: three times fewer FLOPs and no (pairs, 3 dim)
    concatenation, which dominated a document's training step."""

    def __init__(self, dim: int, num_distances: int, distance_dim: int, hidden: int, dropout: float):
        super().__init__()
        self.dim = dim
        self.distance = nn.Embedding(num_distances, distance_dim)
        self.first = nn.Linear(3 * dim + distance_dim, hidden)
        self.rest = nn.Sequential(nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 1))

    def forward(self, g: torch.Tensor, antecedents: torch.Tensor, distances: torch.Tensor) -> torch.Tensor:
        """g (K, dim), antecedents and distance buckets (K, A) -> scores (K, A)."""
        w_i, w_j, w_ij, w_d = self.first.weight.split([self.dim, self.dim, self.dim, self.distance.embedding_dim], dim=1)
        own = nn.functional.linear(g, w_i, self.first.bias).unsqueeze(1)
        other = nn.functional.linear(g, w_j)[antecedents]
        product = nn.functional.linear(g.unsqueeze(1) * g[antecedents], w_ij)
        distance = nn.functional.linear(self.distance.weight, w_d)[distances]
        return self.rest(own + other + product + distance).squeeze(-1)


def pool_between(states: torch.Tensor, heads: torch.Tensor, tails: torch.Tensor) -> torch.Tensor:
    """Max over the tokens strictly between two spans: states (B, T, D), heads and tails (B, P, 2) end-exclusive ->
    (B, P, D) (or one instance: (T, D) and (P, 2) -> (P, D)); zeros where the spans touch or overlap.

    A sparse table (``table[b, k, i]``: the max of ``states[b, i : i + 2**k]``) answers each pair with two lookups, so
    the cost is O(T log T + P) rows instead of a (P, T, D) mask: a sentence where an untrained model finds 300
    entities has 90,000 pairs, which as a mask would need tens of gigabytes."""
    if states.dim() == 2:
        return pool_between(states.unsqueeze(0), heads.unsqueeze(0), tails.unsqueeze(0))[0]
    start, end = torch.minimum(heads[..., 1], tails[..., 1]), torch.maximum(heads[..., 0], tails[..., 0])
    length = (end - start).clamp(min=0)
    levels = [states]
    while 2 ** len(levels) <= states.size(1):
        half = 2 ** (len(levels) - 1)
        previous = levels[-1]
        levels.append(nn.functional.pad(torch.maximum(previous[:, :-half], previous[:, half:]), (0, 0, 0, half)))
    table = torch.stack(levels, dim=1)  # (B, levels, T, D); rows past a level's last full window are never read
    level = torch.log2(length.clamp(min=1).float()).floor().long()
    right = (end - (1 << level)).clamp(min=0)
    batch = torch.arange(states.size(0), device=states.device).unsqueeze(1).expand_as(level)
    pooled = torch.maximum(table[batch, level, start.clamp(max=states.size(1) - 1)], table[batch, level, right])
    return pooled.masked_fill((length == 0).unsqueeze(-1), 0)


def prune(scores: torch.Tensor, mask: torch.Tensor, keep: list[int], available: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (B, K) of the ``keep[b]`` best-scoring valid spans per item, in span order, and their mask.
    ``available[b]``: how many spans item ``b`` has (``mask[b].sum()``, passed from the host: no device sync)."""
    chosen = [
        scores[b].masked_fill(~mask[b], float("-inf")).topk(min(k, n)).indices.sort().values
        for b, (k, n) in enumerate(zip(keep, available))
    ]
    indices = torch.zeros(len(keep), max(1, max(len(c) for c in chosen)), dtype=torch.long, device=scores.device)
    kept = torch.zeros_like(indices, dtype=torch.bool)
    for b, c in enumerate(chosen):
        indices[b, : len(c)] = c
        kept[b, : len(c)] = True
    return indices, kept
