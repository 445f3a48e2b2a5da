"""Probing classifiers on frozen sentence vectors, with SentEval's protocol.

SentEval's probing protocol (``senteval/probing.py`` + ``tools/validation.py:SplitClassifier``): train on ``tr``,
pick the L2 strength with the best accuracy on ``va``, report that classifier's accuracy on ``te``; results are
``{devacc, acc, ndev, ntest}`` in percent, rounded to two decimals. The classifier is a logistic regression or the
paper's MLP (one sigmoid hidden layer).

Everything runs on whole tensors: features are standardized with the training statistics, and one model per grid
point is trained *at once* (the weights carry a leading grid dimension; the problems are independent, so summing
their losses optimizes each on its own). Logistic regression is solved full-batch with L-BFGS; the MLP with Adam on
large minibatches, early-stopped per grid point on the dev accuracy (SentEval early-stops on dev too).
"""
from __future__ import annotations

import itertools
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from hmtl.probing.errors import ProbingError
from hmtl.probing.tasks import ProbingData

CLASSIFIERS = ("logreg", "mlp")
SENTEVAL_L2_GRID = (1e-5, 1e-4, 1e-3, 1e-2)  # SentEval's PyTorch path: weight decay 10^-5 .. 10^-2
# extended upwards: the UD-built sets are 10-100x smaller than SentEval's, and L-BFGS trains to convergence where
# SentEval's early stopping regularizes on its own, so stronger penalties win (10^-2 was often the best of SentEval's)
L2_GRID = SENTEVAL_L2_GRID + (1e-1, 1.0)


@dataclass
class ProbeConfig:
    classifier: str = "logreg"
    l2_grid: tuple[float, ...] = L2_GRID
    standardize: bool = True
    seed: int = 1111
    # the problems are small: one thread avoids oversubscription, which made L-BFGS 20-80x slower next to another
    # job on a 2-core machine; None keeps torch's setting
    num_threads: int | None = 1
    # logistic regression (L-BFGS, full batch)
    max_iter: int = 300
    # MLP (the paper searched hidden in [50, 100, 200] and dropout in [0, 0.1, 0.2] as well)
    hidden_grid: tuple[int, ...] = (50,)
    dropout_grid: tuple[float, ...] = (0.0,)
    batch_size: int = 1024
    lr: float = 3e-3
    max_epochs: int = 100
    tenacity: int = 5

    def __post_init__(self) -> None:
        if self.classifier not in CLASSIFIERS:
            raise ProbingError(f"unknown classifier {self.classifier!r}; known: {', '.join(CLASSIFIERS)}")
        if not self.l2_grid:
            raise ProbingError("l2_grid is empty")


@contextmanager
def _threads(count: int | None):
    previous = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _accuracy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``(R, N, C)`` logits -> ``(R,)`` accuracies in [0, 1]."""
    if y.numel() == 0:
        return torch.zeros(logits.shape[0])
    return (logits.argmax(-1) == y.unsqueeze(0)).float().mean(-1)


def _standardize(train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    mean = train.mean(0, keepdim=True)
    std = train.std(0, keepdim=True, unbiased=False)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    return [(x - mean) / std for x in (train, *others)]


class _LogReg:
    """R independent multinomial logistic regressions: weights ``(R, D, C)``, L2 ``l2_r / 2 * |W_r|^2``."""

    def __init__(self, dim: int, classes: int, l2: torch.Tensor, generator: torch.Generator):
        self.l2 = l2
        self.w = torch.zeros(len(l2), dim, classes, requires_grad=True)
        self.b = torch.zeros(len(l2), 1, classes, requires_grad=True)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("nd,rdc->rnc", x, self.w) + self.b

    def fit(self, x: torch.Tensor, y: torch.Tensor, config: ProbeConfig, *_) -> None:
        optimizer = torch.optim.LBFGS([self.w, self.b], lr=1, max_iter=config.max_iter, history_size=20,
                                      tolerance_grad=1e-7, tolerance_change=1e-10, line_search_fn="strong_wolfe")
        r = len(self.l2)
        target = y.repeat(r)

        def closure():
            optimizer.zero_grad()
            logits = self.logits(x)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target, reduction="sum") / x.shape[0]
            loss = loss + 0.5 * (self.l2 * self.w.pow(2).sum(dim=(1, 2))).sum()
            loss.backward()
            return loss

        optimizer.step(closure)

    @torch.no_grad()
    def predict_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x)


class _MLP:
    """R independent ``Linear -> Dropout -> Sigmoid -> Linear`` classifiers (SentEval's MLP), each with its own
    L2 strength, hidden size (the units above it are masked off) and dropout rate."""

    def __init__(self, dim: int, classes: int, l2: torch.Tensor, hidden: torch.Tensor, dropout: torch.Tensor,
                 generator: torch.Generator):
        r, h = len(l2), int(hidden.max())
        self.l2, self.dropout, self.generator = l2, dropout, generator
        self.unit_mask = (torch.arange(h).unsqueeze(0) < hidden.unsqueeze(1)).float().unsqueeze(1)  # (R, 1, H)
        bound1, bound2 = dim ** -0.5, h ** -0.5
        self.w1 = ((torch.rand(r, dim, h, generator=generator) * 2 - 1) * bound1).requires_grad_()
        self.b1 = torch.zeros(r, 1, h, requires_grad=True)
        self.w2 = ((torch.rand(r, h, classes, generator=generator) * 2 - 1) * bound2).requires_grad_()
        self.b2 = torch.zeros(r, 1, classes, requires_grad=True)
        self.params = [self.w1, self.b1, self.w2, self.b2]

    def logits(self, x: torch.Tensor, train: bool = False) -> torch.Tensor:
        hidden = torch.einsum("nd,rdh->rnh", x, self.w1) + self.b1
        if train and bool((self.dropout > 0).any()):
            keep = (1 - self.dropout).view(-1, 1, 1)
            mask = torch.rand(hidden.shape, generator=self.generator) < keep
            hidden = hidden * mask / keep
        hidden = torch.sigmoid(hidden) * self.unit_mask
        return torch.einsum("rnh,rhc->rnc", hidden, self.w2) + self.b2

    def fit(self, x, y, config: ProbeConfig, dev_x, dev_y) -> None:
        optimizer = torch.optim.Adam(self.params, lr=config.lr)
        r, n = len(self.l2), x.shape[0]
        best = torch.full((r,), -1.0)
        best_params = [p.detach().clone() for p in self.params]
        stale = 0
        for _ in range(config.max_epochs):
            order = torch.randperm(n, generator=self.generator)
            for start in range(0, n, config.batch_size):
                batch = order[start:start + config.batch_size]
                logits = self.logits(x[batch], train=True)
                loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y[batch].repeat(r), reduction="sum") / len(batch)
                penalty = self.l2 * (self.w1.pow(2).sum(dim=(1, 2)) + self.w2.pow(2).sum(dim=(1, 2)))
                optimizer.zero_grad()
                (loss + 0.5 * penalty.sum()).backward()
                optimizer.step()
            with torch.no_grad():
                accuracy = _accuracy(self.logits(dev_x), dev_y)
                improved = accuracy > best
                if improved.any():
                    stale = 0
                    best = torch.where(improved, accuracy, best)
                    for saved, param in zip(best_params, self.params):
                        saved[improved] = param.detach()[improved]
                else:
                    stale += 1
            if stale >= config.tenacity:
                break
        with torch.no_grad():
            for saved, param in zip(best_params, self.params):
                param.copy_(saved)

    @torch.no_grad()
    def predict_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x)


def probe(train_x: torch.Tensor, train_y: torch.Tensor, dev_x: torch.Tensor, dev_y: torch.Tensor,
          test_x: torch.Tensor, test_y: torch.Tensor, config: ProbeConfig | None = None,
          num_classes: int | None = None) -> dict:
    """Train on train, choose the grid point on dev, score it on test.

    Returns SentEval's ``{devacc, acc, ndev, ntest}`` (percent) plus ``ntrain`` and the chosen ``params``. Ties on
    dev go to the first grid point (SentEval's ``argmax``).
    """
    config = config or ProbeConfig()
    if train_x.shape[0] == 0 or dev_x.shape[0] == 0:
        raise ProbingError("a probing task needs training and dev instances")
    train_x, dev_x, test_x = (t.detach().to("cpu", torch.float32) for t in (train_x, dev_x, test_x))
    train_y, dev_y, test_y = (t.detach().to("cpu", torch.long) for t in (train_y, dev_y, test_y))
    if config.standardize:
        train_x, dev_x, test_x = _standardize(train_x, dev_x, test_x)
    classes = num_classes or int(max(train_y.max(), dev_y.max(), test_y.max() if test_y.numel() else 0)) + 1
    generator = torch.Generator().manual_seed(config.seed)
    with torch.random.fork_rng(devices=[]), _threads(config.num_threads):
        torch.manual_seed(config.seed)
        if config.classifier == "logreg":
            grid = [{"l2": l2} for l2 in config.l2_grid]
            model = _LogReg(train_x.shape[1], classes, torch.tensor(config.l2_grid), generator)
        else:
            grid = [{"l2": l2, "hidden": h, "dropout": p}
                    for h, p, l2 in itertools.product(config.hidden_grid, config.dropout_grid, config.l2_grid)]
            model = _MLP(train_x.shape[1], classes, torch.tensor([g["l2"] for g in grid]),
                         torch.tensor([g["hidden"] for g in grid]), torch.tensor([g["dropout"] for g in grid]),
                         generator)
        model.fit(train_x, train_y, config, dev_x, dev_y)
        dev_accuracy = _accuracy(model.predict_logits(dev_x), dev_y)
        best = int(torch.argmax(dev_accuracy))  # first maximum
        test_accuracy = _accuracy(model.predict_logits(test_x), test_y)[best]
    return {
        "devacc": round(100 * float(dev_accuracy[best]), 2),
        "acc": round(100 * float(test_accuracy), 2),
        "ndev": int(dev_x.shape[0]),
        "ntest": int(test_x.shape[0]),
        "ntrain": int(train_x.shape[0]),
        "params": grid[best],
    }


def split_vectors(vectors: torch.Tensor, data: ProbingData) -> dict[str, torch.Tensor]:
    """Rows of ``vectors`` (in ``data.all_sentences()`` order: tr, va, te) per split."""
    counts = data.counts()
    if vectors.shape[0] != sum(counts.values()):
        raise ProbingError(f"{data.task}: {vectors.shape[0]} vectors for {sum(counts.values())} sentences")
    tr, va = counts["tr"], counts["va"]
    return {"tr": vectors[:tr], "va": vectors[tr:tr + va], "te": vectors[tr + va:]}


def probe_task(vectors: torch.Tensor, data: ProbingData, config: ProbeConfig | None = None) -> dict:
    """Probe one task from the vectors of ``data.all_sentences()``."""
    parts = split_vectors(vectors, data)
    labels = {split: torch.tensor(data.label_ids(split), dtype=torch.long) for split in parts}
    return probe(parts["tr"], labels["tr"], parts["va"], labels["va"], parts["te"], labels["te"], config,
                 num_classes=len(data.label_names))


def majority_baseline(data: ProbingData) -> dict:
    """Always the most frequent training label (ties: the first in SentEval's sorted order)."""
    train = data.splits["tr"].labels
    names = data.label_names
    label = max(names, key=lambda name: (train.count(name), -names.index(name)))

    def accuracy(split: str) -> float:
        labels = data.splits[split].labels
        return round(100 * sum(1 for x in labels if x == label) / max(1, len(labels)), 2)

    return {"devacc": accuracy("va"), "acc": accuracy("te"), "ndev": len(data.splits["va"]),
            "ntest": len(data.splits["te"]), "ntrain": len(train), "params": {"label": label}}

