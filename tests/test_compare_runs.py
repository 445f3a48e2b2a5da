"""scripts/compare_runs.py: multi-task vs single-task test metrics and updates to the best dev score."""
import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "compare_runs.py"
spec = importlib.util.spec_from_file_location("compare_runs", SCRIPT)
compare_runs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare_runs)


def run_dir(tmp_path, name, test, updates, best_epoch):
    directory = tmp_path / name
    directory.mkdir()
    epochs = [{"epoch": e, "updates": u, "validation": {k: v - 10 + e for k, v in test.items()}} for e, u in enumerate(updates, start=1)]
    (directory / "metrics.json").write_text(json.dumps({"epochs": epochs, "best_epoch": best_epoch, "test": test}))
    tasks = sorted({k[len("MEAN__"):].split("_")[0] for k in test if k != "MEAN__all"})
    (directory / "config.json").write_text(json.dumps({"tasks": [{"name": t} for t in tasks]}))
    return str(directory)


def test_compare_puts_each_task_beside_its_single_task_run_and_sums_updates(tmp_path):
    multi = run_dir(tmp_path, "multi", {"MEAN__ner_f1": 90.0, "MEAN__coref_avg_f1": 41.0, "MEAN__all": 65.5}, [100, 200, 300], 2)
    ner = run_dir(tmp_path, "ner", {"MEAN__ner_f1": 89.5, "MEAN__all": 89.5}, [40, 80], 2)
    coref = run_dir(tmp_path, "coref", {"MEAN__coref_avg_f1": 42.0, "MEAN__all": 42.0}, [30, 60, 90], 1)
    result = compare_runs.compare(compare_runs.load(multi), [compare_runs.load(ner), compare_runs.load(coref)])
    assert [(r["metric"], r["multi"], r["single"]) for r in result["rows"]] == [("ner_f1", 90.0, 89.5), ("coref_avg_f1", 41.0, 42.0)]
    assert (result["multi_updates_to_best"], result["single_updates_total"]) == (200, 110)
    table = compare_runs.markdown(result, multi)
    assert "| ner_f1 | 90.00 | 89.50 | +0.50 |" in table and "| coref_avg_f1 | 41.00 | 42.00 | -1.00 |" in table
    runs = [compare_runs.load(d) for d in (multi, ner, coref)]
    compare_runs.plot([("MEAN__ner_f1", [(runs[0], "o-", "multi"), (runs[1], "s--", "ner")])], str(tmp_path / "curves.png"))
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_curves_put_runs_side_by_side_at_equal_updates(tmp_path):
    scratch = compare_runs.load(run_dir(tmp_path, "scratch", {"MEAN__ner_f1": 80.0, "a__ner_f1": 80.0}, [10, 20, 30], 3))
    tuned = compare_runs.load(run_dir(tmp_path, "tuned", {"MEAN__ner_f1": 84.0, "a__ner_f1": 84.0}, [10, 20], 2))
    table = compare_runs.curves_markdown([scratch, tuned], "a__ner_f1").splitlines()
    assert table[0] == "| epoch | updates | scratch | tuned |"
    assert table[2:] == ["| 1 | 10 | 71.00 | 75.00 |", "| 2 | 20 | 72.00 | 76.00 |", "| 3 | 30 | 73.00 | — |",
                         "| test (best epoch) | | 80.00 (3) | 84.00 (2) |"]


def test_an_unfinished_run_is_named(tmp_path):
    directory = tmp_path / "running"
    directory.mkdir()
    (directory / "metrics.json").write_text(json.dumps({"epochs": [], "best_epoch": None}))
    with pytest.raises(SystemExit, match="running/metrics.json has no test metrics"):
        compare_runs.load(str(directory))


def test_per_namespace_compares_each_corpus_of_one_task_with_its_own_single_run(tmp_path):
    multi = run_dir(tmp_path, "multi", {"MEAN__ner_f1": 80.0, "a__ner_f1": 85.0, "b__ner_f1": 75.0, "MEAN__all": 80.0}, [50, 100], 2)
    config = tmp_path / "multi" / "config.json"
    config.write_text(json.dumps({"tasks": [{"name": "ner", "datasets": ["a", "b"]}]}))
    a = run_dir(tmp_path, "a", {"MEAN__ner_f1": 84.0, "a__ner_f1": 84.0, "MEAN__all": 84.0}, [30], 1)
    b = run_dir(tmp_path, "b", {"MEAN__ner_f1": 76.5, "b__ner_f1": 76.5, "MEAN__all": 76.5}, [20, 40], 2)
    result = compare_runs.compare(compare_runs.load(multi), [compare_runs.load(a), compare_runs.load(b)], per_namespace=True)
    assert [(r["metric"], r["multi"], r["single"]) for r in result["rows"]] == [("a__ner_f1", 85.0, 84.0), ("b__ner_f1", 75.0, 76.5)]
    assert (result["multi_updates_to_best"], result["single_updates_total"]) == (100, 70)
    assert "| b__ner_f1 | 75.00 | 76.50 | -1.50 |" in compare_runs.markdown(result, multi)


def test_seeds_of_one_recipe_get_a_mean_and_spread_compared_with_the_single_run(tmp_path):
    a = run_dir(tmp_path, "a", {"MEAN__ner_f1": 84.0, "a__ner_f1": 84.0, "MEAN__all": 84.0}, [30], 1)
    runs = []
    for name, f1, updates in (("seed13", 83.0, [50, 100]), ("seed7", 85.0, [50, 100, 150])):
        runs.append(run_dir(tmp_path, name, {"MEAN__ner_f1": f1, "a__ner_f1": f1, "MEAN__all": f1}, updates, len(updates)))
        (tmp_path / name / "config.json").write_text(json.dumps({"tasks": [{"name": "ner", "datasets": ["a"]}]}))
    results = [compare_runs.compare(compare_runs.load(d), [compare_runs.load(a)], per_namespace=True) for d in runs]
    table = compare_runs.seeds_markdown(results, runs).splitlines()
    assert table[0] == "| test metric | seed13 | seed7 | mean ± sd | single-task | mean − single |"
    assert table[2] == "| a__ner_f1 | 83.00 | 85.00 | 84.00 ± 1.41 | 84.00 | +0.00 |"
    assert table[-1] == "Parameter updates to the best dev score: seed13 100, seed7 150; single-task models together 30."
