"""Task samplers: which task's batch to train on at each step (jiant-style, pluggable).

``proportional`` is HMTL's: a task is drawn in proportion to its number of batches; ``temperature`` flattens that
(p ~ n^(1/T)); ``uniform`` ignores size.
"""
from __future__ import annotations

import numpy as np

from hmtl.config import SamplerConfig
from hmtl.registry import SAMPLERS


@SAMPLERS.register("uniform")
def uniform(sizes: dict[str, int], config: SamplerConfig) -> dict[str, float]:
    return {task: 1.0 / len(sizes) for task in sizes}


@SAMPLERS.register("proportional")
def proportional(sizes: dict[str, int], config: SamplerConfig) -> dict[str, float]:
    total = sum(sizes.values())
    return {task: n / total for task, n in sizes.items()}


@SAMPLERS.register("temperature")
def temperature(sizes: dict[str, int], config: SamplerConfig) -> dict[str, float]:
    weights = {task: n ** (1.0 / config.temperature) for task, n in sizes.items()}
    total = sum(weights.values())
    return {task: w / total for task, w in weights.items()}


def task_probabilities(sizes: dict[str, int], config: SamplerConfig) -> dict[str, float]:
    return SAMPLERS.get(config.type, "sampler.type")(sizes, config)


def task_schedule(probabilities: dict[str, float], steps: int, rng: np.random.Generator) -> list[str]:
    """The sequence of tasks for one epoch of ``steps`` steps."""
    tasks = sorted(probabilities)
    return list(rng.choice(tasks, size=steps, p=[probabilities[t] for t in tasks]))
