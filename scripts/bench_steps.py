"""Where an epoch's time goes: seconds per training step (forward + backward) of each task group of a config, in
the steady state (a frozen transformer's cache filled first), times the steps the sampler gives each group per
epoch. Reads the corpora and builds the model as train.py does; trains nothing into a run folder.

    python scripts/bench_steps.py --config_file_path configs/hmtl.json [--steps 10] [--threads 1] [--profile]

``--profile`` also runs the timed steps under the torch profiler and reports, per group, the share of the step's
CPU time spent in matrix products (``aten::mm`` / ``addmm`` / ``bmm``) and the rate they ran at: a step whose
products take most of its time at the core's peak rate can only get faster by computing less.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np

from hmtl.config import load_config
from hmtl.training.batching import collated
from hmtl.training.samplers import task_probabilities
from hmtl.training.trainer import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config_file_path", required=True)
    parser.add_argument("--steps", type=int, default=10, help="batches timed per group")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="matrix products' share of each step and their GFLOP/s")
    args = parser.parse_args()
    config = load_config(args.config_file_path, {"trainer": {"num_threads": args.threads}})
    with tempfile.TemporaryDirectory() as folder:
        trainer = Trainer(config, folder, force=True)
    model = trainer.model.train()
    rng = np.random.default_rng(config.seed)
    every = {group.name: trainer._batches(group, rng) for group in trainer.groups}
    shares = task_probabilities({name: len(batches) for name, batches in every.items()}, config.sampler)

    def run(batches: list) -> float:
        started = time.perf_counter()
        for batch in collated(model, batches):
            sum(model(batch).values()).backward()
            trainer.optimizer.zero_grad(set_to_none=True)
        return (time.perf_counter() - started) / len(batches)

    rows = {}
    for name, batches in every.items():
        timed = [list(batch.items()) for batch in batches[: args.steps]]
        run(timed)  # fills the transformer's cache for these batches
        seconds = run(timed)
        steps = shares[name] * trainer.steps_per_epoch
        rows[name] = {"seconds_per_step": round(seconds, 3), "steps_per_epoch": round(steps),
                      "seconds_per_epoch": round(seconds * steps)}
        if args.profile:
            rows[name].update(matrix_products(lambda: run(timed)))
    total = sum(row["seconds_per_epoch"] for row in rows.values())
    for row in rows.values():
        row["share"] = round(row["seconds_per_epoch"] / total, 3)
    summary = {"config": args.config_file_path, "threads": args.threads, "groups": rows,
               "seconds_per_epoch_after_the_cache": total}
    if args.profile:
        summary["square_product_gflops"] = square_product_gflops()
    print(json.dumps(summary, indent=2))


MATRIX_PRODUCTS = ("aten::mm", "aten::addmm", "aten::bmm")


def matrix_products(work) -> dict:
    """The matrix products' share of ``work``'s CPU time and their rate, from the torch profiler's FLOP counts."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as profiler:
        work()
    events = profiler.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    products = [e for e in events if e.key in MATRIX_PRODUCTS]
    seconds = sum(e.self_cpu_time_total for e in products) / 1e6
    flops = sum(e.flops for e in products)
    return {"matrix_product_share": round(seconds * 1e6 / total, 3), "matrix_product_gflops": round(flops / seconds / 1e9, 1)}


def square_product_gflops(size: int = 2048, repeats: int = 5) -> float:
    """The rate of a large square float32 product on this machine and thread count: what the steps' products could
    reach at best."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return round(2 * size ** 3 * repeats / (time.perf_counter() - started) / 1e9, 1)


if __name__ == "__main__":
    main()
