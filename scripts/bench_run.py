"""Figures of a finished training run, for docs/BENCHMARKS.md: best dev and test scores, seconds per epoch,
peak memory, and inference speed (test sentences per second with the best checkpoint).

    python scripts/bench_run.py --serialization_dir out [--metric MEAN__ner_f1] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from pathlib import Path

import torch

from hmtl.data.loading import read_split
from hmtl.model import load_model
from hmtl.training.evaluation import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serialization_dir", required=True)
    parser.add_argument("--metric", default=None, help="metric to report (default: the run's validation metric)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.serialization_dir)
    summary = json.loads((out / "metrics.json").read_text())
    metric = args.metric or summary["validation_metric"].lstrip("+-")
    epochs = summary["epochs"]

    model = load_model(out)
    documents = {d: read_split(d, model.config.data[d], "test") for t in model.config.tasks for d in t.datasets}
    instances = model.task_instances(documents)
    started = time.perf_counter()
    test = evaluate(model, instances, args.batch_size)
    seconds = time.perf_counter() - started
    units = sum(len(v) for v in instances.values())
    figures = {
        "serialization_dir": str(out),
        "metric": metric,
        "epochs_trained": len(epochs),
        "best_epoch": summary.get("best_epoch"),
        "dev": summary["best_validation"][metric],
        "test": test[metric],
        "seconds_per_epoch_median": statistics.median(e["seconds"] for e in epochs),
        "training_peak_memory_mb": max((e["peak_memory_mb"] for e in epochs if "peak_memory_mb" in e), default=None),
        "inference_units_per_second": round(units / seconds, 1),
        "inference_units": units,
        "inference_peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "threads": args.threads,
    }
    print(json.dumps(figures, indent=2))
    (out / "benchmark.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
