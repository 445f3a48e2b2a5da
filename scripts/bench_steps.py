"""Where an epoch's time goes: seconds per training step (forward, backward and optimizer update, as the trainer
runs them) of each task group of a config, in the steady state (a frozen transformer's cache filled first), times
the steps the sampler gives each group per epoch. Reads the corpora and builds the model as train.py does; trains
nothing into a run folder.

    python scripts/bench_steps.py --config_file_path configs/hmtl.json [--steps 10] [--threads 1] [--profile]
        [--device cuda] [--save DIR]

``--profile`` also runs the timed steps under the torch profiler and reports, per group, the share of the step's
CPU time spent in matrix products (``aten::mm`` / ``addmm`` / ``bmm``) and the rate they ran at: a step whose
products take most of its time at the core's peak rate can only get faster by computing less.
On a GPU (``--device cuda``) each group also reports the share of its steps' wall time the GPU spent in kernels
(torch profiler, which slows the host a little, so this is a lower bound), the host synchronisations per step (CUDA's
sync debug mode) and where they come from; the summary has the peak GPU memory. ``--save DIR`` keeps the model as
it is after the timed steps (for ``bench_predict.py``).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from hmtl.checks import load_config
from hmtl.training.batching import collated
from hmtl.training.samplers import task_probabilities
from hmtl.training.trainer import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config_file_path", required=True)
    parser.add_argument("--steps", type=int, default=10, help="batches timed per group")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="matrix products' share of each step and their GFLOP/s")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (trainer.device)")
    parser.add_argument("--save", default=None, help="save the model after the timed steps into this folder")
    parser.add_argument("--output_file", default=None, help="also write the summary here (JSON)")
    args = parser.parse_args()
    config = load_config(args.config_file_path, {"trainer": {"num_threads": args.threads, "device": args.device}})
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        trainer = Trainer(config, folder, force=True)
    loading = time.perf_counter() - started
    model = trainer.model.train()
    gpu = trainer.device.type == "cuda"
    rng = np.random.default_rng(config.seed)
    every = {group.name: trainer._batches(group, rng) for group in trainer.groups}
    shares = task_probabilities({name: len(batches) for name, batches in every.items()}, config.sampler)

    def run(batches: list) -> float:
        synchronize(trainer.device)
        started = time.perf_counter()
        for batch in collated(model, batches):
            trainer.forward_backward(batch)
            trainer.update()
        synchronize(trainer.device)
        return (time.perf_counter() - started) / len(batches)

    rows = {}
    for name, batches in every.items():
        timed = [list(batch.items()) for batch in batches[: args.steps]]
        first = run(timed)  # fills the transformer's cache for these batches
        seconds = run(timed)
        steps = shares[name] * trainer.steps_per_epoch
        rows[name] = {"seconds_per_step": round(seconds, 4), "first_pass_seconds_per_step": round(first, 4),
                      "steps_per_epoch": round(steps), "seconds_per_epoch": round(seconds * steps, 1)}
        if args.profile:
            rows[name].update(matrix_products(lambda: run(timed)))
        if gpu:
            rows[name].update(gpu_busy_share(lambda: run(timed)))
            rows[name].update(host_syncs(lambda: run(timed), len(timed)))
    total = sum(row["seconds_per_epoch"] for row in rows.values())
    for row in rows.values():
        row["share"] = round(row["seconds_per_epoch"] / total, 3)
    summary = {"config": args.config_file_path, "device": str(trainer.device), "threads": args.threads,
               "bf16": config.trainer.bf16, "steps_timed_per_group": args.steps,
               "seconds_to_read_and_prepare": round(loading, 1), "groups": rows,
               "seconds_per_epoch_after_the_cache": round(total, 1),
               "first_epoch_seconds_estimate": round(sum(r["first_pass_seconds_per_step"] * r["steps_per_epoch"] for r in rows.values()), 1)}
    if gpu:
        summary["gpu"] = torch.cuda.get_device_name(trainer.device)
        summary["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated(trainer.device) / 2**20)
    if args.profile:
        summary["square_product_gflops"] = square_product_gflops()
    if args.save:
        model.save_pretrained(args.save)
    print(json.dumps(summary, indent=2))
    if args.output_file:
        Path(args.output_file).write_text(json.dumps(summary, indent=2))


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def gpu_busy_share(work) -> dict:
    """The share of ``work``'s wall time the GPU spent running kernels (their summed device time; one stream)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as profiler:
        started = time.perf_counter()
        work()
        wall = time.perf_counter() - started
    kernels = sum(getattr(e, "self_device_time_total", 0) for e in profiler.key_averages()
                  if str(getattr(e, "device_type", "")).endswith("CUDA"))
    return {"gpu_busy_share": round(kernels / 1e6 / wall, 3)}


def host_syncs(work, steps: int) -> dict:
    """Host-device synchronisations per step (CUDA's sync debug mode warns at each) and the lines that cause most."""
    import warnings

    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            work()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    sites = Counter(f"{Path(w.filename).name}:{w.lineno}" for w in caught if "synchroniz" in str(w.message))
    return {"host_syncs_per_step": round(sum(sites.values()) / steps, 1), "host_sync_sites": dict(sites.most_common(8))}


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
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return round(2 * size ** 3 * repeats / (time.perf_counter() - started) / 1e9, 1)


if __name__ == "__main__":
    main()
