"""Where an epoch's time goes: seconds per training step (forward + backward) of each task group of a config, in
the steady state (a frozen transformer's cache filled first), times the steps the sampler gives each group per
epoch. Reads the corpora and builds the model as train.py does; trains nothing into a run folder.

    python scripts/bench_steps.py --config_file_path configs/hmtl.json [--steps 10] [--threads 1]
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
    total = sum(row["seconds_per_epoch"] for row in rows.values())
    for row in rows.values():
        row["share"] = round(row["seconds_per_epoch"] / total, 3)
    print(json.dumps({"config": args.config_file_path, "threads": args.threads, "groups": rows,
                      "seconds_per_epoch_after_the_cache": total}, indent=2))


if __name__ == "__main__":
    main()
