"""The probing classifiers: SentEval's protocol and result keys, on small synthetic vectors."""
import pytest
import torch

from hmtl.probing.errors import ProbingError
from hmtl.probing.probe import L2_GRID, ProbeConfig, majority_baseline, probe, probe_task
from hmtl.probing.tasks import ProbingData, ProbingSplit


def blobs(n, classes=3, dim=8, noise=0.5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, dim, generator=torch.Generator().manual_seed(99)) * 3
    y = torch.arange(n) % classes
    x = centers[y] + noise * torch.randn(n, dim, generator=generator) + 10  # offset: standardization matters
    return x, y


def test_logistic_regression_result_keys_and_accuracy():
    result = probe(*blobs(300), *blobs(90, seed=1), *blobs(60, seed=2))
    assert set(result) >= {"devacc", "acc", "ndev", "ntest"}
    assert result["ndev"] == 90 and result["ntest"] == 60 and result["ntrain"] == 300
    assert result["acc"] > 95 and result["devacc"] > 95
    assert result["params"]["l2"] in L2_GRID
    assert isinstance(result["acc"], float) and round(result["acc"], 2) == result["acc"]


def test_noise_gives_chance_and_is_deterministic():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(400, 16, generator=generator)
    y = torch.randint(0, 2, (400,), generator=generator)
    args = (x[:200], y[:200], x[200:300], y[200:300], x[300:], y[300:])
    first = probe(*args)
    assert 30 < first["acc"] < 70
    assert probe(*args) == first


def test_dev_picks_the_l2_and_ties_go_to_the_first():
    x, y = blobs(60, classes=2, noise=0.01)
    result = probe(x, y, x, y, x, y, ProbeConfig(l2_grid=(1e-3, 1e-2, 1e-1)))
    assert result["devacc"] == 100.0 and result["params"] == {"l2": 1e-3}


def test_mlp_with_a_grid_of_hidden_sizes_and_dropout():
    config = ProbeConfig(classifier="mlp", l2_grid=(1e-4, 1e-2), hidden_grid=(8, 16), dropout_grid=(0.0, 0.1),
                         max_epochs=60, batch_size=64, lr=1e-2)
    result = probe(*blobs(300), *blobs(90, seed=1), *blobs(60, seed=2), config)
    assert result["acc"] > 90
    assert set(result["params"]) == {"l2", "hidden", "dropout"}
    # XOR: beyond a linear probe, within the MLP's reach
    generator = torch.Generator().manual_seed(5)
    x = torch.randint(0, 2, (600, 2), generator=generator).float()
    y = (x[:, 0] != x[:, 1]).long()
    x = x + 0.05 * torch.randn(600, 2, generator=generator)
    split = (x[:400], y[:400], x[400:500], y[400:500], x[500:], y[500:])
    assert probe(*split)["acc"] < 80
    assert probe(*split, ProbeConfig(classifier="mlp", l2_grid=(1e-5,), max_epochs=300, batch_size=100,
                                      lr=5e-2, tenacity=30))["acc"] > 95


def test_bad_configuration():
    with pytest.raises(ProbingError, match="unknown classifier 'svm'"):
        ProbeConfig(classifier="svm")
    with pytest.raises(ProbingError, match="training and dev"):
        probe(torch.zeros(0, 2), torch.zeros(0), torch.zeros(1, 2), torch.zeros(1), torch.zeros(1, 2), torch.zeros(1))


def test_threads_are_restored():
    before = torch.get_num_threads()
    probe(*blobs(30), *blobs(9, seed=1), *blobs(9, seed=2), ProbeConfig(num_threads=1))
    assert torch.get_num_threads() == before


def _data():
    splits = {"tr": ProbingSplit([["a"]] * 4, ["y", "x", "y", "y"]), "va": ProbingSplit([["b"]] * 2, ["x", "y"]),
              "te": ProbingSplit([["c"]] * 3, ["y", "y", "x"])}
    return ProbingData("T", splits)


def test_probe_task_and_majority():
    data = _data()
    vectors = torch.tensor([[1.0], [-1.0], [1.0], [1.0], [-1.0], [1.0], [1.0], [1.0], [-1.0]])
    result = probe_task(vectors, data)
    assert result["acc"] == 100.0 and result["ntest"] == 3 and result["ndev"] == 2
    with pytest.raises(ProbingError, match="8 vectors for 9 sentences"):
        probe_task(vectors[:8], data)
    majority = majority_baseline(data)
    assert majority["params"] == {"label": "y"}
    assert majority["devacc"] == 50.0 and majority["acc"] == 66.67


def test_senteval_protocol_fits_on_sentevals_row_order(monkeypatch):
    """SentEval sorts each split by sentence length, then label, before fitting; the senteval protocol does too
    (an unconverged fit depends on the row order), the builtin one keeps the file order."""
    splits = {"tr": ProbingSplit([["a", "b", "c"], ["a"], ["a", "b"], ["b"]], ["x", "y", "x", "x"]),
              "va": ProbingSplit([["a", "b"], ["a"]], ["y", "x"]),
              "te": ProbingSplit([["c"]], ["y"])}
    data = ProbingData("T", splits)
    assert data.label_names == ["x", "y"]
    assert data.senteval_order("tr") == [3, 1, 2, 0]  # lengths 1, 1, 2, 3; of the two of length 1, x before y
    assert data.senteval_order("va") == [1, 0]
    import importlib

    module = importlib.import_module("hmtl.probing.probe")
    seen = []
    real = module.probe
    monkeypatch.setattr(module, "probe", lambda train_x, *rest, **kw: seen.append(train_x[:, 0].tolist())
                        or real(train_x, *rest, **kw))
    vectors = torch.arange(7, dtype=torch.float32).unsqueeze(1)
    probe_task(vectors, data, ProbeConfig(protocol="senteval"))
    probe_task(vectors, data, ProbeConfig())
    assert seen == [[3.0, 1.0, 2.0, 0.0], [0.0, 1.0, 2.0, 3.0]]
