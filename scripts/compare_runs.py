"""HMTL's central comparison from finished runs: test metrics of a multi-task model beside the single-task models of
the same tasks, and the parameter updates each needed to reach its best dev score (the single-task models summed).

    python scripts/compare_runs.py --multi runs/hmtl --single runs/ner runs/emd runs/re runs/coref

Prints a Markdown table (for docs/BENCHMARKS.md) and, with --json, the figures as JSON.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def load(directory: str) -> dict:
    summary = json.loads((Path(directory) / "metrics.json").read_text())
    if "test" not in summary:
        raise SystemExit(f"error: {directory}/metrics.json has no test metrics (is the run finished?)")
    best = summary["epochs"][summary["best_epoch"] - 1]
    if "updates" not in best:
        raise SystemExit(f"error: {directory}/metrics.json does not record parameter updates (trained by an older hmtl)")
    return {"dir": directory, "test": summary["test"], "best_epoch": summary["best_epoch"], "updates": best["updates"]}


def compare(multi: dict, singles: list[dict]) -> dict:
    keys = [k for k in multi["test"] if k.startswith("MEAN__") and k != "MEAN__all"]
    rows = []
    for key in keys:
        owner = next((s for s in singles if key in s["test"]), None)
        single = owner["test"][key] if owner else None
        rows.append({"metric": key[len("MEAN__"):], "multi": multi["test"][key], "single": single,
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--multi", required=True, help="serialization directory of the multi-task run")
    parser.add_argument("--single", nargs="+", required=True, help="serialization directories of single-task runs")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = compare(load(args.multi), [load(d) for d in args.single])
    print(json.dumps(result, indent=2) if args.json else markdown(result, args.multi))


if __name__ == "__main__":
    main()
