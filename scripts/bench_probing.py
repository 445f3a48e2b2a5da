#!/usr/bin/env python
"""Benchmark of the probing pipeline (rerunnable): build the ten tasks from EWT + GUM, then probe them with the
bag-of-GloVe baseline (50d) and bag-of-random-word-vectors (384d, the width of a MiniLM/level layer).

    HMTL_DATA_DIR=/work/shared/data python scripts/bench_probing.py [--output_dir out/bench_probing]
        [--classifier logreg|mlp] [--pooling mean|max]

Prints the split sizes, per-task accuracies and the time of each stage, and a Markdown summary for
docs/BENCHMARKS.md. The vector cache is not used, so encoding is timed every run.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch

from hmtl.probing.baselines import glove_encoder, random_encoder
from hmtl.probing.build import BuildOptions, build_all, load_sentences, treebank_files
from hmtl.probing.extract import encode_dataset
from hmtl.probing.probe import ProbeConfig, majority_baseline, probe_task
from hmtl.probing.run import markdown_table
from hmtl.probing.tasks import SPLITS, TASKS, load_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default=os.environ.get("HMTL_DATA_DIR", "data"))
    parser.add_argument("--output_dir", default="out/bench_probing")
    parser.add_argument("--classifier", default="logreg", choices=["logreg", "mlp"])
    parser.add_argument("--pooling", default="mean", choices=["mean", "max"])
    parser.add_argument("--max_iter", type=int, default=ProbeConfig.max_iter)
    parser.add_argument("--num_threads", type=int, default=1, help="torch threads of the probe (0: torch default)")
    parser.add_argument("--seed", type=int, default=1111)
    args = parser.parse_args()

    task_path = Path(args.output_dir) / "tasks"
    started = time.perf_counter()
    sentences = load_sentences(treebank_files(args.data_dir))
    reports = build_all(sentences, task_path, options=BuildOptions(seed=args.seed))
    build_seconds = time.perf_counter() - started

    datasets = [load_task(task_path, task) for task in TASKS]
    config = ProbeConfig(classifier=args.classifier, seed=args.seed, max_iter=args.max_iter,
                         num_threads=args.num_threads or None)
    results: dict[str, dict[str, dict]] = {"majority": {d.task: majority_baseline(d) for d in datasets}}
    timings: dict[str, dict[str, float]] = {}
    load_started = time.perf_counter()
    encoders = {"glove": glove_encoder()}
    glove_load = time.perf_counter() - load_started
    encoders["random"] = random_encoder(384, seed=args.seed)
    for name, encoder in encoders.items():
        timing = timings[name] = {"encode": 0.0, "probe": 0.0}
        for data in datasets:
            t0 = time.perf_counter()
            vectors = encode_dataset(encoder, data.all_sentences(), [name], args.pooling, 256, progress=False)[name]
            t1 = time.perf_counter()
            result = probe_task(vectors, data, config)
            t2 = time.perf_counter()
            timing["encode"] += t1 - t0
            timing["probe"] += t2 - t1
            result["seconds"] = round(t2 - t1, 2)
            results.setdefault(name, {})[data.task] = result
            print(f"{name:<8} {data.task:<22} dim {vectors.shape[1]:>3}  dev {result['devacc']:6.2f}  test "
                  f"{result['acc']:6.2f}  l2 {result['params']['l2']:g}  encode {t1 - t0:5.1f}s  probe {t2 - t1:5.1f}s")

    machine = f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__} ({torch.get_num_threads()} threads)"
    print(f"\n## Probing benchmark ({machine})\n")
    print(f"Build of the ten tasks (read EWT + GUM, build, write): {build_seconds:.1f}s\n")
    print("| task | file | train | dev | test | classes |\n|---|---|---:|---:|---:|---:|")
    for report, task in zip(reports, TASKS):
        print(f"| {task.name} | {task.file} | " + " | ".join(f"{report.counts[s]:,}" for s in SPLITS)
              + f" | {len(report.labels)} |")
    print(f"\nProbe ({args.classifier}, {args.pooling} pooling, L2 grid {list(config.l2_grid)}, max_iter {config.max_iter}):\n")
    print("| encoder | dim | encode (s) | probe (s) | total (s) |\n|---|---:|---:|---:|---:|")
    for name, timing in timings.items():
        dim = 50 if name == "glove" else 384
        extra = f" (+{glove_load:.1f}s loading GloVe)" if name == "glove" else ""
        print(f"| {name} | {dim} | {timing['encode']:.1f} | {timing['probe']:.1f} | "
              f"{timing['encode'] + timing['probe']:.1f}{extra} |")
    print("\nTest accuracy (%):\n")
    print(markdown_table(results, list(TASKS), ["majority", "random", "glove"]))


if __name__ == "__main__":
    main()
