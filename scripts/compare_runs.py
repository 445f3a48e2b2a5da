"""HMTL's central comparison from finished runs: test metrics of a multi-task model beside the single-task models of
the same tasks, and the parameter updates each needed to reach its best dev score (the single-task models summed).

    python scripts/compare_runs.py --multi runs/hmtl --single runs/ner runs/emd runs/re runs/coref
    python scripts/compare_runs.py --multi runs/biomtl --single runs/ncbi runs/jnlpba runs/conll03 --per_namespace

``--per_namespace`` compares each namespace (``ncbi__ner``, ...) instead of each task: one task over several
corpora (BioMTL's table) against a single-task model per corpus. Several ``--multi`` runs (one recipe, other seeds)
are put side by side with their mean and standard deviation, and the mean is compared with the single-task models:

    python scripts/compare_runs.py --multi runs/biomtl runs/biomtl_seed7 --single runs/ncbi runs/jnlpba runs/conll03 --per_namespace

    python scripts/compare_runs.py --curves runs/ncbi runs/ncbi_from_conll03 --metric ncbi__ner_f1

``--curves`` puts one dev metric of several runs side by side at equal parameter updates (e.g. a model trained
from scratch and one fine-tuned with ``--init_from``), with each run's test value.

Prints a Markdown table (for docs/BENCHMARKS.md) and, with --json, the figures as JSON; --plot FILE.png draws each
task's main dev metric against parameter updates, multi-task beside single-task.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def load(directory: str) -> dict:
    summary = json.loads((Path(directory) / "metrics.json").read_text())
    if "test" not in summary:
        raise SystemExit(f"error: {directory}/metrics.json has no test metrics (is the run finished?)")
    if any("updates" not in epoch for epoch in summary["epochs"]):
        raise SystemExit(f"error: {directory}/metrics.json does not record parameter updates (trained by an older hmtl)")
    best = summary["epochs"][summary["best_epoch"] - 1]
    return {"dir": directory, "test": summary["test"], "best_epoch": summary["best_epoch"], "updates": best["updates"],
            "curve": [(epoch["updates"], epoch["validation"]) for epoch in summary["epochs"]]}


def compare(multi: dict, singles: list[dict], per_namespace: bool = False) -> dict:
    keys = main_metrics(multi, per_namespace) if per_namespace else [
        k for k in multi["test"] if k.startswith("MEAN__") and k != "MEAN__all"]
    rows = []
    for key in keys:
        owner = next((s for s in singles if key in s["test"]), None)
        single = owner["test"][key] if owner else None
        rows.append({"metric": key.removeprefix("MEAN__"), "multi": multi["test"][key], "single": single,
                     "single_run": owner["dir"] if owner else None})
    return {
        "rows": rows,
        "multi_updates_to_best": multi["updates"],
        "single_updates_to_best": {s["dir"]: s["updates"] for s in singles},
        "single_updates_total": sum(s["updates"] for s in singles),
    }


def markdown(result: dict, multi_dir: str) -> str:
    lines = [f"| test metric | multi-task ({multi_dir}) | single-task | difference |", "|---|---|---|---|"]
    for row in result["rows"]:
        single = "—" if row["single"] is None else f"{row['single']:.2f}"
        difference = "—" if row["single"] is None else f"{row['multi'] - row['single']:+.2f}"
        lines.append(f"| {row['metric']} | {row['multi']:.2f} | {single} | {difference} |")
    singles = ", ".join(f"{Path(d).name} {u:,}" for d, u in result["single_updates_to_best"].items())
    lines.append("")
    lines.append(f"Parameter updates to the best dev score: multi-task {result['multi_updates_to_best']:,}; "
                 f"single-task models together {result['single_updates_total']:,} ({singles}).")
    return "\n".join(lines)


def seeds_markdown(results: list[dict], multi_dirs: list[str]) -> str:
    """Several runs of one recipe: each run's test value, their mean ± standard deviation and mean − single-task."""
    names = [Path(d).name for d in multi_dirs]
    lines = ["| test metric | " + " | ".join(names) + " | mean ± sd | single-task | mean − single |",
             "|---|" + "---:|" * (len(names) + 3)]
    for i, row in enumerate(results[0]["rows"]):
        values = [result["rows"][i]["multi"] for result in results]
        mean, sd = statistics.mean(values), statistics.stdev(values)
        single = "—" if row["single"] is None else f"{row['single']:.2f}"
        difference = "—" if row["single"] is None else f"{mean - row['single']:+.2f}"
        lines.append(f"| {row['metric']} | " + " | ".join(f"{v:.2f}" for v in values)
                     + f" | {mean:.2f} ± {sd:.2f} | {single} | {difference} |")
    lines.append("")
    lines.append("Parameter updates to the best dev score: "
                 + ", ".join(f"{name} {result['multi_updates_to_best']:,}" for name, result in zip(names, results))
                 + f"; single-task models together {results[0]['single_updates_total']:,}.")
    return "\n".join(lines)


def main_metrics(run: dict, per_namespace: bool = False) -> list[str]:
    """Each task's main metric: the first ``MEAN__<task>_`` key in the order the task reports them; with
    ``per_namespace`` the same metric of each of the task's namespaces."""
    config = json.loads((Path(run["dir"]) / "config.json").read_text())
    keys = [k for k in run["test"] if k.startswith("MEAN__") and k != "MEAN__all"]
    means = [next(k for k in keys if k.startswith(f"MEAN__{task['name']}_")) for task in config["tasks"]]
    if not per_namespace:
        return means
    return [f"{dataset}__{mean.removeprefix('MEAN__')}" for task, mean in zip(config["tasks"], means) for dataset in task["datasets"]]


def curves_markdown(runs: list[dict], metric: str) -> str:
    """Dev ``metric`` of each run per epoch (with its parameter updates), then each run's test value."""
    lines = ["| epoch | updates | " + " | ".join(Path(r["dir"]).name for r in runs) + " |",
             "|---:|---:|" + "---:|" * len(runs)]
    for epoch in range(max(len(r["curve"]) for r in runs)):
        updates = {r["curve"][epoch][0] for r in runs if epoch < len(r["curve"])}
        values = [f"{r['curve'][epoch][1][metric]:.2f}" if epoch < len(r["curve"]) else "—" for r in runs]
        lines.append(f"| {epoch + 1} | {'/'.join(f'{u:,}' for u in sorted(updates))} | " + " | ".join(values) + " |")
    lines.append("| test (best epoch) | | " + " | ".join(f"{r['test'][metric]:.2f} ({r['best_epoch']})" for r in runs) + " |")
    return "\n".join(lines)


def plot(panels: list[tuple[str, list[tuple[dict, str, str]]]], path: str) -> None:
    """One panel per metric: each (run, line style, label) as its dev curve against parameter updates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4), squeeze=False)
    for axis, (key, runs) in zip(axes[0], panels):
        for run, style, label in runs:
            updates, values = zip(*[(u, v[key]) for u, v in run["curve"] if key in v])
            axis.plot(updates, values, style, label=label)
        axis.set_title(key.removeprefix("MEAN__") + " (dev)")
        axis.set_xlabel("parameter updates")
        axis.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()  # below the panels: inside one, it hides curves
    figure.tight_layout()
    figure.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0), ncol=min(len(labels), 4), frameon=False)
    figure.savefig(path, dpi=110, bbox_inches="tight")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--multi", nargs="+", help="serialization directory of the multi-task run (several: seeds of one recipe)")
    parser.add_argument("--single", nargs="+", help="serialization directories of single-task runs")
    parser.add_argument("--per_namespace", action="store_true", help="compare namespaces, not tasks")
    parser.add_argument("--curves", nargs="+", help="runs whose dev --metric to put side by side per epoch")
    parser.add_argument("--metric", help="the metric of --curves, e.g. ncbi__ner_f1")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--plot", default=None, help="PNG file for the dev curves")
    args = parser.parse_args()
    if args.curves:
        if not args.metric:
            parser.error("--curves needs --metric")
        runs = [load(d) for d in args.curves]
        print(curves_markdown(runs, args.metric))
        panels = [(args.metric, [(run, style, Path(run["dir"]).name) for run, style in zip(runs, ["o-", "s--", "^:", "d-."])])]
    else:
        if not args.multi or not args.single:
            parser.error("give --multi and --single, or --curves")
        multis, singles = [load(d) for d in args.multi], [load(d) for d in args.single]
        results = [compare(multi, singles, args.per_namespace) for multi in multis]
        if args.json:
            print(json.dumps(results[0] if len(results) == 1 else results, indent=2))
        else:
            print(markdown(results[0], args.multi[0]) if len(results) == 1 else seeds_markdown(results, args.multi))
        labels = ["multi-task"] if len(multis) == 1 else [f"multi-task {Path(d).name}" for d in args.multi]
        panels = [(key, [(multi, "o-", label) for multi, label in zip(multis, labels)]
                   + [(s, "s--", "single-task") for s in singles if key in s["test"]])
                  for key in main_metrics(multis[0], args.per_namespace)]
    if args.plot:
        plot(panels, args.plot)
        print(f"plot written to {args.plot}")


if __name__ == "__main__":
    main()
