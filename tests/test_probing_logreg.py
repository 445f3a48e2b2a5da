"""The batched L-BFGS logistic regressions and the two probe protocols, checked against scikit-learn itself."""
import warnings

import numpy as np
import pytest
import torch

from hmtl.probing.errors import ProbingError
from hmtl.probing.logreg import fit_logreg
from hmtl.probing.probe import L2_GRID, SENTEVAL_C_GRID, ProbeConfig, probe

sklearn = pytest.importorskip("sklearn")
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402


def problem(n, classes=3, dim=6, noise=1.5, seed=0, scale=None):
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(42).normal(size=(classes, dim))
    y = np.arange(n) % classes
    x = centers[y] + noise * rng.normal(size=(n, dim)) + 0.5
    if scale is not None:
        x = x * np.asarray(scale)
    return x.astype(np.float32), y


def sklearn_split_classifier(train, dev, test):
    """SentEval's SplitClassifier with usepytorch=False."""
    scores = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for c in SENTEVAL_C_GRID:
            scores.append(round(100 * LogisticRegression(C=c, random_state=1111).fit(*train).score(*dev), 2))
        best = SENTEVAL_C_GRID[int(np.argmax(scores))]
        accuracy = round(100 * LogisticRegression(C=best, random_state=1111).fit(*train).score(*test), 2)
    return {"devacc": max(scores), "acc": accuracy, "C": best}


def as_torch(*arrays):
    return [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]


@pytest.mark.parametrize("classes", [2, 4])
def test_fit_matches_sklearn_weights(classes):
    """Converged problems: the same weights and intercepts as LogisticRegression(C) for every C of the grid."""
    x, y = problem(400, classes=classes)
    fits = [LogisticRegression(C=c).fit(x, y) for c in SENTEVAL_C_GRID]
    assert all(f.n_iter_[0] < 100 for f in fits)
    ours = fit_logreg(*as_torch(x, y), classes, [1 / (c * len(y)) for c in SENTEVAL_C_GRID])
    assert ours.binary == (classes == 2) and ours.converged.all()
    for i, reference in enumerate(fits):
        weight, bias = ours.weight[i].double().numpy(), ours.bias[i].double().numpy()
        assert weight.shape == reference.coef_.shape
        assert np.allclose(weight, reference.coef_, rtol=2e-3, atol=2e-3), (i, np.abs(weight - reference.coef_).max())
        assert np.allclose(bias, reference.intercept_, rtol=2e-3, atol=2e-3)


def test_stops_at_max_iter_like_sklearn():
    """An ill-conditioned problem (feature scales 100 .. 0.01, weak penalty) that scikit-learn leaves unconverged
    after its 100 iterations: so does the solver, and both are still far from the optimum."""
    x, y = problem(600, classes=3, scale=[100, 30, 10, 1, 0.1, 0.01])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference = LogisticRegression(C=8.0).fit(x, y)
    assert reference.n_iter_[0] == 100
    ours = fit_logreg(*as_torch(x, y), 3, [1 / (8.0 * len(y))])
    assert int(ours.n_iter[0]) == 100 and not bool(ours.converged[0])
    longer = fit_logreg(*as_torch(x, y), 3, [1 / (8.0 * len(y))], max_iter=3000)
    assert float(longer.loss[0]) < float(ours.loss[0])


def test_senteval_protocol_matches_sklearns_split_classifier():
    train, dev, test = problem(500, seed=1), problem(200, seed=2), problem(200, seed=3)
    expected = sklearn_split_classifier(train, dev, test)
    result = probe(*as_torch(*train, *dev, *test), ProbeConfig(protocol="senteval"))
    assert result["params"] == {"C": expected["C"]}
    assert result["devacc"] == expected["devacc"] and result["acc"] == expected["acc"]


def test_senteval_protocol_does_not_standardize():
    """Shrinking the informative features 100x: the builtin protocol standardizes them back (same result), SentEval's
    L2 penalty on raw features holds their large weights back (worse, and scikit-learn agrees)."""
    shrink = [0.01, 0.01, 0.01, 0.01, 1, 1]
    data = [problem(400, seed=s, noise=0.8) for s in (1, 2, 3)]
    small = [problem(400, seed=s, noise=0.8, scale=shrink) for s in (1, 2, 3)]
    flat = lambda splits: as_torch(*(a for split in splits for a in split))  # noqa: E731
    builtin, builtin_small = probe(*flat(data)), probe(*flat(small))
    assert builtin_small["acc"] == builtin["acc"] and builtin_small["params"] == builtin["params"]
    senteval = probe(*flat(data), ProbeConfig(protocol="senteval"))
    senteval_small = probe(*flat(small), ProbeConfig(protocol="senteval"))
    assert senteval_small["acc"] < senteval["acc"] - 5
    assert abs(senteval_small["acc"] - sklearn_split_classifier(*small)["acc"]) <= 0.5
    assert abs(senteval["acc"] - sklearn_split_classifier(*data)["acc"]) <= 0.5


def test_builtin_protocol_reaches_the_optimum():
    """The preconditioned builtin solver (rotation + scaling) finds the same minimum as scikit-learn run to a tight
    tolerance on the standardized features (C = 1 / (l2 n); multinomial, so three classes)."""
    x, y = problem(300, classes=3, dim=5)
    x = x * np.array([1, 10, 0.1, 1, 1], dtype=np.float32) + np.float32(3)
    standardized = (x - x.mean(0)) / x.std(0)
    l2 = 1e-3
    reference = LogisticRegression(C=1 / (l2 * len(y)), tol=1e-10, max_iter=10000).fit(standardized, y)
    config = ProbeConfig(l2_grid=(l2,))
    tx, ty = as_torch(x, y)
    result = probe(tx, ty, tx, ty, tx, ty, config)
    assert result["acc"] == round(100 * reference.score(standardized, y), 2)
    from hmtl.probing.probe import _builtin_logreg, _standardize

    (logits,), _ = _builtin_logreg(*_standardize(tx, tx)[:1], ty, [_standardize(tx, tx)[1]], 3, config)
    probabilities = torch.softmax(logits[0].double(), -1).numpy()
    assert np.allclose(probabilities, reference.predict_proba(standardized), atol=2e-3)


def test_grids_and_configuration():
    assert SENTEVAL_C_GRID == (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
    assert SENTEVAL_C_GRID == tuple(float(2 ** t) for t in range(-2, 4, 1))  # SentEval's SplitClassifier regs
    assert L2_GRID == (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
    x, y = problem(120)
    result = probe(*as_torch(x, y, x, y, x, y), ProbeConfig(protocol="senteval"))
    assert set(result["params"]) == {"C"} and result["params"]["C"] in SENTEVAL_C_GRID
    with pytest.raises(ProbingError, match="unknown protocol 'sklearn'"):
        ProbeConfig(protocol="sklearn")
    with pytest.raises(ProbingError, match="classifier 'mlp' needs protocol builtin"):
        ProbeConfig(protocol="senteval", classifier="mlp")
    with pytest.raises(ProbingError, match="c_grid"):
        ProbeConfig(protocol="senteval", c_grid=())


def test_many_problems_at_once_equal_one_at_a_time():
    x, y = problem(300, classes=3)
    l2 = [1e-4, 1e-3, 1e-2]
    together = fit_logreg(*as_torch(x, y), 3, l2)
    for i, value in enumerate(l2):
        alone = fit_logreg(*as_torch(x, y), 3, [value])
        assert torch.allclose(together.weight[i], alone.weight[0], atol=1e-4)
        assert int(together.n_iter[i]) == int(alone.n_iter[0])


def test_preconditioner_changes_variables_not_the_problem():
    """The builtin protocol's preconditioner rotates and scales the weights: its adjoint is the transpose of its
    forward map (so the gradients the solver sees are right), and a fit through it reaches the same optimum."""
    from hmtl.probing.logreg import Preconditioner

    generator = torch.Generator().manual_seed(0)
    d, k, r = 6, 3, 2
    rotation = torch.linalg.qr(torch.randn(d, d, generator=generator, dtype=torch.float64))[0]
    scale = torch.rand(r, k * (d + 1), generator=generator, dtype=torch.float64) + 0.5
    precond = Preconditioner(scale, rotation)
    u, g = (torch.randn(r, k * (d + 1), generator=generator, dtype=torch.float64) for _ in range(2))
    assert torch.allclose((precond.forward(u, d) * g).sum(1), (u * precond.adjoint(g, d)).sum(1))
    assert not torch.allclose(precond.forward(u, d), u * scale)  # the rotation is applied

    x, y = problem(300, classes=k, dim=d)
    l2 = [1e-3, 1e-2]
    # float64 products: in float32 the loss stops moving before gtol=1e-5 on some CPUs (rounding, not the solver)
    solve = dict(binary=False, gtol=1e-5, max_iter=1000, dtype=torch.float64)
    plain = fit_logreg(*as_torch(x, y), k, l2, **solve)
    through = fit_logreg(*as_torch(x, y), k, l2, **solve, preconditioner=precond)
    assert plain.converged.all() and through.converged.all()
    assert torch.allclose(plain.loss, through.loss, rtol=1e-6)
    features = torch.from_numpy(x)
    assert torch.allclose(plain.logits(features).softmax(-1), through.logits(features).softmax(-1), atol=1e-3)
