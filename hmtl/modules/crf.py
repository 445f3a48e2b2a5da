"""Linear-chain conditional random field: negative log-likelihood and Viterbi decoding over a batch.

Sequences are left-aligned (``mask`` is a prefix of ones). Transition constraints (e.g. BIOES forbids ``O -> I-X``)
are applied as a large negative score in both training and decoding, so the model never learns or emits them.
"""
from __future__ import annotations

import torch
from torch import nn

FORBIDDEN = -1e4


class CRF(nn.Module):
    def __init__(self, num_tags: int, allowed: torch.Tensor | None = None):
        """``allowed``: optional ``(num_tags + 2, num_tags + 2)`` bool matrix over tags plus START and END."""
        super().__init__()
        self.num_tags = num_tags
        self.transitions = nn.Parameter(torch.zeros(num_tags, num_tags))
        self.start = nn.Parameter(torch.zeros(num_tags))
        self.end = nn.Parameter(torch.zeros(num_tags))
        if allowed is None:
            allowed = torch.ones(num_tags + 2, num_tags + 2, dtype=torch.bool)
        penalty = (~allowed).float() * FORBIDDEN
        self.register_buffer("transition_penalty", penalty[:num_tags, :num_tags], persistent=False)
        self.register_buffer("start_penalty", penalty[num_tags, :num_tags], persistent=False)
        self.register_buffer("end_penalty", penalty[:num_tags, num_tags + 1], persistent=False)

    def _scores(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (
            self.transitions + self.transition_penalty,
            self.start + self.start_penalty,
            self.end + self.end_penalty,
        )

    def log_partition(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """log Z per sequence, by the forward algorithm. emissions (B, T, K), mask (B, T) -> (B,)."""
        transitions, start, end = self._scores()
        alpha = start + emissions[:, 0]
        for t in range(1, emissions.size(1)):
            step = torch.logsumexp(alpha.unsqueeze(2) + transitions.unsqueeze(0), dim=1) + emissions[:, t]
            alpha = torch.where(mask[:, t].unsqueeze(1), step, alpha)
        return torch.logsumexp(alpha + end, dim=1)

    def path_score(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Unnormalised score of the given tag paths. tags (B, T) -> (B,)."""
        transitions, start, end = self._scores()
        maskf = mask.to(emissions.dtype)
        emitted = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)
        score = start[tags[:, 0]] + (emitted * maskf).sum(1)
        score = score + (transitions[tags[:, :-1], tags[:, 1:]] * maskf[:, 1:]).sum(1)
        last = tags.gather(1, (mask.sum(1, keepdim=True) - 1).clamp(min=0)).squeeze(1)
        return score + end[last]

    def forward(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Summed negative log-likelihood of ``tags``; computed in fp32 even under autocast."""
        emissions = emissions.float()
        return (self.log_partition(emissions, mask) - self.path_score(emissions, tags, mask)).sum()

    @torch.no_grad()
    def viterbi(self, emissions: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
        """Best tag sequence per item, each as long as its mask."""
        emissions = emissions.float()
        transitions, start, end = self._scores()
        score = start + emissions[:, 0]
        backpointers = []
        for t in range(1, emissions.size(1)):
            candidates = score.unsqueeze(2) + transitions.unsqueeze(0)
            best, index = candidates.max(dim=1)
            backpointers.append(index)
            score = torch.where(mask[:, t].unsqueeze(1), best + emissions[:, t], score)
        score = score + end
        lengths = mask.sum(1).tolist()
        best_last = score.argmax(1).tolist()
        # one transfer (from a GPU), then plain lists: indexing a tensor per step costs a call each
        pointers = torch.stack(backpointers, dim=1).tolist() if backpointers else [[] for _ in lengths]  # (B, T-1, K)
        paths = []
        for b, length in enumerate(lengths):
            tag = best_last[b]
            path = [tag]
            for t in range(length - 1, 0, -1):
                tag = pointers[b][t - 1][tag]
                path.append(tag)
            paths.append(path[::-1])
        return paths


def transition_constraints(labels: list[str], scheme: str = "bioes") -> torch.Tensor:
    """Allowed transitions among BIOES or IOB2 tags, plus START (index K) and END (index K + 1).

    BIOES: a chunk is S, or B I* E. IOB2: a chunk is B I*, so it may end after B or I (before O, B, or the end)."""
    if scheme not in ("bioes", "iob2"):
        raise ValueError(f"unknown tag scheme {scheme!r}: expected bioes or iob2")
    k = len(labels)
    allowed = torch.zeros(k + 2, k + 2, dtype=torch.bool)

    def split(label: str) -> tuple[str, str]:
        return ("O", "") if label == "O" else (label[0], label[2:])

    for i, a in enumerate(labels + ["START"]):
        for j, b in enumerate(labels + ["END"]):
            ia = i if i < k else k
            jb = j if j < k else k + 1
            pa, ta = ("START", "") if a == "START" else split(a)
            pb, tb = ("END", "") if b == "END" else split(b)
            if scheme == "iob2":
                ok = pb != "I" or (pa in ("B", "I") and ta == tb)
            elif pa in ("START", "O", "E", "S"):
                ok = pb in ("O", "B", "S", "END")
            else:  # B or I: the chunk must continue with the same type
                ok = pb in ("I", "E") and ta == tb
            allowed[ia, jb] = ok
    return allowed
