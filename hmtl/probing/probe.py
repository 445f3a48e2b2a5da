"""Probing classifiers on frozen sentence vectors, with SentEval's protocol.

SentEval's probing protocol (``senteval/probing.py`` + ``tools/validation.py:SplitClassifier``): train on ``tr``,
pick the L2 strength with the best accuracy on ``va``, report that classifier's accuracy on ``te``; results are
``{devacc, acc, ndev, ntest}`` in percent, rounded to two decimals. The classifier is a logistic regression or the
paper's MLP (one sigmoid hidden layer).

Two protocols for the logistic regression (``ProbeConfig.protocol``):

- ``builtin`` (default): features standardized with the training statistics, L2 grid ``L2_GRID`` on the loss
  ``mean CE + l2/2 |W|^2``, multinomial, trained to convergence. The solver is preconditioned: its variables are
  the weights on the eigenvectors of the features' covariance (an orthogonal change of basis, which leaves the
  problem and its L2 penalty unchanged), each scaled by ``1 / sqrt(lambda_j / K + l2)``, so L-BFGS needs a few
  dozen iterations where it needed hundreds. The change of basis is applied to the weights (``D x D`` per
  problem), not to the ``N x D`` features.
- ``senteval``: what SentEval's scikit-learn path (``usepytorch=False``) computes: raw features,
  ``LogisticRegression(C=C)`` for ``C`` in ``SENTEVAL_C_GRID`` = 2^-2 .. 2^3 with scikit-learn's defaults (lbfgs,
  ``max_iter=100``, ``tol=1e-4``, one weight vector for two classes, multinomial otherwise, intercept not
  penalized), the dev accuracy rounded to two decimals before the argmax, as SentEval does. The objective
  ``C * sum(loss) + |W|^2 / 2`` is solved as ``mean loss + l2/2 |W|^2`` with ``l2 = 1 / (C n)`` by
  ``hmtl.probing.logreg``, which follows scikit-learn's L-BFGS path from zero, so it also stops where scikit-learn
  stops short of convergence.

Everything runs on whole tensors: one model per grid point, all trained *at once* (``hmtl.probing.logreg`` for the
logistic regressions; the MLP's weights carry a leading grid dimension and are trained with Adam on large
minibatches, early-stopped per grid point on the dev accuracy, as SentEval early-stops on dev).
"""
from __future__ import annotations

import itertools
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from hmtl.probing.errors import ProbingError
from hmtl.probing.logreg import Preconditioner, fit_logreg
from hmtl.probing.tasks import ProbingData

CLASSIFIERS = ("logreg", "mlp")
PROTOCOLS = ("builtin", "senteval")
# SentEval's SplitClassifier with scikit-learn: regs = [2**t for t in range(-2, 4, 1)], LogisticRegression(C=reg)
SENTEVAL_C_GRID = tuple(2.0 ** t for t in range(-2, 4))
SENTEVAL_L2_GRID = (1e-5, 1e-4, 1e-3, 1e-2)  # SentEval's PyTorch path: weight decay 10^-5 .. 10^-2
# extended upwards: the UD-built sets are 10-100x smaller than SentEval's, and L-BFGS trains to convergence where
# SentEval's early stopping regularizes on its own, so stronger penalties win (10^-2 was often the best of SentEval's)
L2_GRID = SENTEVAL_L2_GRID + (1e-1, 1.0)


@dataclass
class ProbeConfig:
    classifier: str = "logreg"
    # builtin: standardized features, l2_grid; senteval: SentEval's scikit-learn logistic regression (c_grid, raw
    # features, scikit-learn's lbfgs defaults); see the module docstring
    protocol: str = "builtin"
    l2_grid: tuple[float, ...] = L2_GRID
    c_grid: tuple[float, ...] = SENTEVAL_C_GRID
    standardize: bool = True  # builtin only: the senteval protocol never standardizes
    seed: int = 1111
    # the problems are small: one thread avoids oversubscription, which made L-BFGS 20-80x slower next to another
    # job on a 2-core machine; None keeps torch's setting
    num_threads: int | None = 1
    # logistic regression (L-BFGS, full batch): builtin's limit and gradient tolerance; the senteval protocol uses
    # scikit-learn's defaults (senteval_max_iter, senteval_tol)
    max_iter: int = 300
    tol: float = 1e-5
    senteval_max_iter: int = 100
    senteval_tol: float = 1e-4
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
        if self.protocol not in PROTOCOLS:
            raise ProbingError(f"unknown protocol {self.protocol!r}; known: {', '.join(PROTOCOLS)}")
        if self.protocol == "senteval" and self.classifier != "logreg":
            raise ProbingError(f"protocol senteval reproduces SentEval's scikit-learn logistic regression; classifier "
                               f"{self.classifier!r} needs protocol builtin")
        if not self.l2_grid:
            raise ProbingError("l2_grid is empty")
        if not self.c_grid or min(self.c_grid) <= 0:
            raise ProbingError("c_grid must hold positive values")


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


def _standardize(train: torch.Tensor, *others: torch.Tensor, scale: bool = True) -> list[torch.Tensor]:
    """The features centered on the training mean and, with ``scale``, divided by the training standard deviation.
    Centering changes no prediction (the intercepts are not penalized) but decouples them from the weights."""
    mean = train.mean(0, keepdim=True)
    if not scale:
        return [x - mean for x in (train, *others)]
    std = train.std(0, keepdim=True, unbiased=False)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    return [(x - mean) / std for x in (train, *others)]


def _builtin_logreg(train_x, train_y, others, classes: int, config: ProbeConfig):
    """Multinomial logistic regressions for ``config.l2_grid`` on centered features, preconditioned (module
    docstring): ``(logits of each of others (R, N, C)), grid``."""
    covariance = (train_x.t() @ train_x).double() / max(1, train_x.shape[0])
    eigenvalues, vectors = torch.linalg.eigh(covariance)
    l2 = torch.tensor(config.l2_grid, dtype=torch.float64)
    curvature = 1.0 / classes
    d = train_x.shape[1]
    scale = torch.empty(len(l2), classes, d + 1, dtype=torch.float64)
    scale[..., :-1] = (curvature * eigenvalues.clamp(min=0).view(1, 1, d) + l2.view(-1, 1, 1)).rsqrt()
    scale[..., -1] = curvature ** -0.5
    fit = fit_logreg(train_x, train_y, classes, l2, binary=False, max_iter=config.max_iter, gtol=config.tol,
                     preconditioner=Preconditioner(scale.view(len(l2), -1), vectors))
    return [fit.logits(x) for x in others], [{"l2": value} for value in config.l2_grid]


def _senteval_logreg(train_x, train_y, others, classes: int, config: ProbeConfig):
    """scikit-learn's ``LogisticRegression(C=C)`` for ``config.c_grid`` (module docstring)."""
    n = train_x.shape[0]
    l2 = [1.0 / (c * n) for c in config.c_grid]
    fit = fit_logreg(train_x, train_y, classes, l2, max_iter=config.senteval_max_iter, gtol=config.senteval_tol)
    return [fit.logits(x) for x in others], [{"C": c} for c in config.c_grid]


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
    if config.protocol == "builtin":
        train_x, dev_x, test_x = _standardize(train_x, dev_x, test_x, scale=config.standardize)
    classes = num_classes or int(max(train_y.max(), dev_y.max(), test_y.max() if test_y.numel() else 0)) + 1
    generator = torch.Generator().manual_seed(config.seed)
    with torch.random.fork_rng(devices=[]), _threads(config.num_threads):
        torch.manual_seed(config.seed)
        if config.classifier == "logreg":
            solve = _senteval_logreg if config.protocol == "senteval" else _builtin_logreg
            (dev_logits, test_logits), grid = solve(train_x, train_y, (dev_x, test_x), classes, config)
        else:
            grid = [{"l2": l2, "hidden": h, "dropout": p}
                    for h, p, l2 in itertools.product(config.hidden_grid, config.dropout_grid, config.l2_grid)]
            model = _MLP(train_x.shape[1], classes, torch.tensor([g["l2"] for g in grid]),
                         torch.tensor([g["hidden"] for g in grid]), torch.tensor([g["dropout"] for g in grid]),
                         generator)
            model.fit(train_x, train_y, config, dev_x, dev_y)
            dev_logits, test_logits = model.predict_logits(dev_x), model.predict_logits(test_x)
        dev_accuracy = _accuracy(dev_logits, dev_y)
        # SentEval compares round(100 * dev accuracy, 2) and takes the first maximum (numpy's argmax)
        best = int(torch.argmax(torch.round(dev_accuracy.double() * 10000)))
        test_accuracy = _accuracy(test_logits, test_y)[best]
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
    """Probe one task from the vectors of ``data.all_sentences()``; the senteval protocol fits on the rows in
    SentEval's order."""
    config = config or ProbeConfig()
    parts = split_vectors(vectors, data)
    labels = {split: torch.tensor(data.label_ids(split), dtype=torch.long) for split in parts}
    if config.protocol == "senteval":
        orders = {split: torch.tensor(data.senteval_order(split), dtype=torch.long) for split in parts}
        parts = {split: rows[orders[split]] for split, rows in parts.items()}
        labels = {split: rows[orders[split]] for split, rows in labels.items()}
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

