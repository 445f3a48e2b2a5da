#!/usr/bin/env python
"""Benchmark of the probing pipeline (rerunnable): build the ten tasks from EWT + GUM, encode them with the
bag-of-GloVe baseline (50d) and bag-of-random-word-vectors (384d, the width of a MiniLM/level layer), then probe
every task on the same vectors three ways:

- ``builtin``: this package's default protocol (standardized features, its L2 grid, preconditioned L-BFGS);
- ``senteval``: ``--protocol senteval``, this package's reproduction of SentEval's scikit-learn path;
- ``sklearn``: the reference, SentEval's ``SplitClassifier`` with ``usepytorch=False`` done with scikit-learn
  itself: each split's rows in SentEval's order (``PROBINGEval.run`` sorts them by sentence length, then label),
  ``LogisticRegression(C=C, random_state=seed)`` fitted on train for each ``C`` in ``2^-2 .. 2^3``, dev accuracy as
  ``round(100 * score, 2)``, the first best ``C`` refitted and scored on test (SentEval is not on PyPI, so this
  script restates its protocol; ``--no_reference`` skips it). scikit-learn runs with one BLAS thread.
  ``--order_check`` also runs it on the rows in file order (untimed), which shows how far scikit-learn's own
  answer moves when only the order of the training rows changes.

    HMTL_DATA_DIR=/work/shared/data python scripts/bench_probing.py [--output_dir out/bench_probing]
        [--classifier logreg|mlp] [--pooling mean|max] [--no_reference] [--order_check]

The three run one after the other on each task, so they see the same machine load. Prints the split sizes, per-task
accuracies and times, and Markdown tables for docs/BENCHMARKS.md. The vector cache is not used (encoding is timed).
"""
from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from hmtl.probing.baselines import glove_encoder, random_encoder
from hmtl.probing.build import BuildOptions, build_all, load_sentences, treebank_files
from hmtl.probing.extract import encode_dataset
from hmtl.probing.probe import SENTEVAL_C_GRID, ProbeConfig, majority_baseline, probe_task, split_vectors
from hmtl.probing.run import markdown_table
from hmtl.probing.tasks import SPLITS, TASKS, load_task


def sklearn_reference(parts: dict[str, np.ndarray], labels: dict[str, np.ndarray], seed: int = 1111) -> dict:
    """SentEval's SplitClassifier.run() with usepytorch=False, on float32 features (what SentEval's batcher gives)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = []
        for c in SENTEVAL_C_GRID:
            classifier = LogisticRegression(C=c, random_state=seed).fit(parts["tr"], labels["tr"])
            scores.append(round(100 * classifier.score(parts["va"], labels["va"]), 2))
        best = SENTEVAL_C_GRID[int(np.argmax(scores))]
        classifier = LogisticRegression(C=best, random_state=seed).fit(parts["tr"], labels["tr"])
        return {"devacc": float(np.max(scores)), "acc": round(100 * classifier.score(parts["te"], labels["te"]), 2),
                "params": {"C": best}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default=os.environ.get("HMTL_DATA_DIR", "data"))
    parser.add_argument("--output_dir", default="out/bench_probing")
    parser.add_argument("--classifier", default="logreg", choices=["logreg", "mlp"],
                        help="the builtin protocol's classifier (the comparison with SentEval needs logreg)")
    parser.add_argument("--pooling", default="mean", choices=["mean", "max"])
    parser.add_argument("--max_iter", type=int, default=ProbeConfig.max_iter)
    parser.add_argument("--num_threads", type=int, default=1, help="torch threads of the probe (0: torch default)")
    parser.add_argument("--seed", type=int, default=1111)
    parser.add_argument("--no_reference", action="store_true", help="skip the scikit-learn reference")
    parser.add_argument("--order_check", action="store_true",
                        help="also run the reference on the rows in file order (untimed)")
    args = parser.parse_args()

    task_path = Path(args.output_dir) / "tasks"
    started = time.perf_counter()
    sentences = load_sentences(treebank_files(args.data_dir))
    reports = build_all(sentences, task_path, options=BuildOptions(seed=args.seed))
    build_seconds = time.perf_counter() - started

    datasets = [load_task(task_path, task) for task in TASKS]
    threads = args.num_threads or None
    builtin = ProbeConfig(classifier=args.classifier, seed=args.seed, max_iter=args.max_iter, num_threads=threads)
    senteval = ProbeConfig(protocol="senteval", seed=args.seed, num_threads=threads)
    compare = args.classifier == "logreg"
    reference = compare and not args.no_reference
    methods = ["builtin"] + (["senteval"] if compare else []) + (["sklearn"] if reference else [])
    results: dict[str, dict[str, dict[str, dict]]] = {m: {"majority": {d.task: majority_baseline(d) for d in datasets}}
                                                     for m in methods}
    timings: dict[str, dict[str, float]] = {}
    load_started = time.perf_counter()
    encoders = {"glove": glove_encoder()}
    glove_load = time.perf_counter() - load_started
    encoders["random"] = random_encoder(384, seed=args.seed)
    index: dict[tuple[str, ...], int] = {}
    for data in datasets:
        for sentence in data.all_sentences():
            index.setdefault(tuple(sentence), len(index))
    distinct = [list(s) for s in index]
    limit = None
    if reference:
        from threadpoolctl import threadpool_limits

        limit = threadpool_limits(1)  # scikit-learn's BLAS on one thread, like the probe
    for name, encoder in encoders.items():
        t0 = time.perf_counter()
        vectors = encode_dataset(encoder, distinct, [name], args.pooling, 256, progress=False)[name]
        timing = timings[name] = {"encode": time.perf_counter() - t0, **{m: 0.0 for m in methods}}
        for data in datasets:
            rows = torch.tensor([index[tuple(s)] for s in data.all_sentences()], dtype=torch.long)
            task_vectors = vectors[rows]
            line = f"{name:<7} {data.task:<22}"
            for method in methods:
                t1 = time.perf_counter()
                if method == "sklearn":
                    parts = {k: v.numpy() for k, v in split_vectors(task_vectors, data).items()}
                    labels = {s: np.array(data.label_ids(s)) for s in SPLITS}
                    orders = {s: data.senteval_order(s) for s in SPLITS}
                    result = sklearn_reference({s: parts[s][orders[s]] for s in SPLITS},
                                               {s: labels[s][orders[s]] for s in SPLITS}, args.seed)
                else:
                    result = probe_task(task_vectors, data, builtin if method == "builtin" else senteval)
                seconds = time.perf_counter() - t1
                timing[method] += seconds
                result["seconds"] = round(seconds, 2)
                results[method].setdefault(name, {})[data.task] = result
                chosen = ",".join(f"{k}={v:g}" for k, v in result["params"].items())
                line += f"  {method} {result['acc']:6.2f} ({chosen}, {seconds:4.1f}s)"
                if method == "sklearn" and args.order_check:
                    unsorted = sklearn_reference(parts, labels, args.seed)
                    results.setdefault("sklearn, file order", {}).setdefault(name, {})[data.task] = unsorted
                    line += f"  (file order {unsorted['acc']:6.2f})"
            print(line, flush=True)
    if limit is not None:
        limit.restore_original_limits()

    cpu = platform.processor() or platform.machine()
    machine = f"{cpu}, {os.cpu_count()} CPU cores, torch {torch.__version__} ({args.num_threads or torch.get_num_threads()} thread(s))"
    print(f"\n## Probing benchmark ({machine})\n")
    print(f"Build of the ten tasks (read EWT + GUM, build, write): {build_seconds:.1f}s\n")
    print("| task | file | train | dev | test | classes |\n|---|---|---:|---:|---:|---:|")
    for report, task in zip(reports, TASKS):
        print(f"| {task.name} | {task.file} | " + " | ".join(f"{report.counts[s]:,}" for s in SPLITS)
              + f" | {len(report.labels)} |")
    print(f"\nEncoding {len(distinct):,} distinct sentences: " + ", ".join(
        f"{name} {t['encode']:.1f}s" for name, t in timings.items()) + f" (+{glove_load:.1f}s loading GloVe)")
    print(f"\nTen-task probe of one layer ({args.pooling} pooling), seconds:\n")
    print("| encoder | dim | " + " | ".join(methods) + (" | sklearn / builtin | sklearn / senteval |" if reference else " |"))
    print("|---|---:|" + "---:|" * len(methods) + ("---:|---:|" if reference else ""))
    for name, timing in timings.items():
        dim = 50 if name == "glove" else 384
        cells = " | ".join(f"{timing[m]:.2f}" for m in methods)
        ratio = (f" | {timing['sklearn'] / timing['builtin']:.1f}x | {timing['sklearn'] / timing['senteval']:.1f}x |"
                 if reference else " |")
        print(f"| {name} | {dim} | {cells}{ratio}")
    for name in encoders:
        print(f"\nTest accuracy (%), {name}:\n")
        check = " sklearn on rows in file order (- sklearn) |" if reference and args.order_check else ""
        print("| task | " + " | ".join(methods) + (" | senteval - sklearn | builtin - sklearn |" if reference else " |")
              + check)
        print("|---|" + "---:|" * len(methods) + ("---:|---:|" if reference else "") + ("---:|" if check else ""))
        diffs = []
        for data in datasets:
            accuracy = {m: results[m][name][data.task]["acc"] for m in methods}
            row = f"| {data.task} | " + " | ".join(f"{accuracy[m]:.2f}" for m in methods)
            if reference:
                diffs.append((accuracy["senteval"] - accuracy["sklearn"], accuracy["builtin"] - accuracy["sklearn"]))
                row += f" | {diffs[-1][0]:+.2f} | {diffs[-1][1]:+.2f}"
                if args.order_check:
                    unsorted = results["sklearn, file order"][name][data.task]["acc"]
                    row += f" | {unsorted:.2f} ({unsorted - accuracy['sklearn']:+.2f})"
                    diffs[-1] += (unsorted - accuracy["sklearn"],)
            print(row + " |")
        if diffs:
            print(f"\nmax |senteval - sklearn| = {max(abs(d[0]) for d in diffs):.2f}, mean "
                  f"{np.mean([abs(d[0]) for d in diffs]):.2f}; max |builtin - sklearn| = "
                  f"{max(abs(d[1]) for d in diffs):.2f}, mean {np.mean([abs(d[1]) for d in diffs]):.2f}"
                  + (f"; max |sklearn file order - sklearn| = {max(abs(d[2]) for d in diffs):.2f}"
                     if args.order_check else ""))
    print("\nTest accuracy (%), builtin protocol:\n")
    table = {"majority": results["builtin"]["majority"], **{n: results["builtin"][n] for n in encoders}}
    print(markdown_table(table, list(TASKS), ["majority", "random", "glove"]))


if __name__ == "__main__":
    main()
