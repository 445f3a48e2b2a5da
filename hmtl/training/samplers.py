"""Task samplers: which task group trains at each step (jiant-style, pluggable).

A sampler is a ``Sampler`` subclass registered with ``@SAMPLERS.register("name")``: the config's ``sampler.type``
names it and the section's other keys are its ``Options``. It is asked for every epoch's probabilities, with the
epoch, so a schedule can change over training. A sampler in a module of your own is usable once the config names
that module in ``include``. The built-in ones all draw a group with probability ~ n^alpha, n its number of batches:
``proportional`` (HMTL's, alpha 1), ``uniform`` (alpha 0), ``temperature`` (alpha 1/T) and ``annealed`` (alpha
from 1 to 0.2 over training).
"""
from __future__ import annotations

import numpy as np
from pydantic import Field, ValidationError

from hmtl.config import SamplerConfig, Section
from hmtl.errors import ConfigError
from hmtl.registry import SAMPLERS


class Sampler:
    """Each group's probability in one epoch; ``Options`` are the sampler's own keys of the config section."""

    class Options(Section):
        """None; a sampler with options subclasses this."""

    def __init__(self, options: "Sampler.Options"):
        self.options = options

    @classmethod
    def from_config(cls, config: SamplerConfig) -> "Sampler":
        """A bad option is a ConfigError naming its dotted key, ``sampler.<option>``."""
        try:
            return cls(cls.Options.model_validate(config.model_extra))
        except ValidationError as error:
            takes = ", ".join(cls.Options.model_fields) or "no options"
            problems = []
            for e in error.errors():
                unknown = e["type"] == "extra_forbidden"
                message = f"unknown option of sampler {config.type!r}; it takes {takes}" if unknown else e["msg"]
                problems.append(f"sampler.{'.'.join(map(str, e['loc']))}: {message}")
            raise ConfigError("; ".join(problems)) from None

    def probabilities(self, sizes: dict[str, int], epoch: int, num_epochs: int) -> dict[str, float]:
        """``sizes``: each group's number of batches; ``epoch``: 1 to ``num_epochs``. The probabilities sum to 1."""
        raise NotImplementedError


def power(sizes: dict[str, int], alpha: float) -> dict[str, float]:
    """p ~ n^alpha: 1 is proportional to size, 0 uniform, in between flattens the sizes."""
    weights = {task: n ** alpha for task, n in sizes.items()}
    total = sum(weights.values())
    return {task: w / total for task, w in weights.items()}


@SAMPLERS.register("uniform")
class Uniform(Sampler):
    """p the same for every group (alpha 0)."""

    def probabilities(self, sizes: dict[str, int], epoch: int, num_epochs: int) -> dict[str, float]:
        return power(sizes, 0.0)


@SAMPLERS.register("proportional")
class Proportional(Sampler):
    """p in proportion to a group's batches (alpha 1): HMTL's, and the default."""

    def probabilities(self, sizes: dict[str, int], epoch: int, num_epochs: int) -> dict[str, float]:
        return power(sizes, 1.0)


@SAMPLERS.register("temperature")
class Temperature(Sampler):
    """p ~ n^(1/T): a large corpus is still drawn more often, but less than in proportion."""

    class Options(Sampler.Options):
        temperature: float = Field(default=2.0, gt=0, description="T: alpha = 1/T (1: proportional; large: near uniform)")

    def probabilities(self, sizes: dict[str, int], epoch: int, num_epochs: int) -> dict[str, float]:
        return power(sizes, 1.0 / self.options.temperature)


@SAMPLERS.register("annealed")
class Annealed(Sampler):
    """Annealed sampling of Stickland & Murray 2019 ("BERT and PALs", ICML): p ~ n^alpha with
    alpha = 1 - 0.8 (e - 1) / (E - 1) in epoch e of E; proportional at first, near uniform (alpha 0.2) in the last
    epoch, so the large tasks interfere less with the small ones as training ends. A one-epoch run is proportional."""

    def probabilities(self, sizes: dict[str, int], epoch: int, num_epochs: int) -> dict[str, float]:
        return power(sizes, 1.0 - 0.8 * (epoch - 1) / max(num_epochs - 1, 1))


def make_sampler(config: SamplerConfig) -> Sampler:
    return SAMPLERS.get(config.type, "sampler.type").from_config(config)


def task_probabilities(sizes: dict[str, int], config: SamplerConfig, epoch: int = 1,
                       num_epochs: int = 1) -> dict[str, float]:
    """Each group's probability in ``epoch`` of ``num_epochs`` (from 1; by default a one-epoch run's)."""
    return make_sampler(config).probabilities(sizes, epoch, num_epochs)


def task_schedule(probabilities: dict[str, float], steps: int, rng: np.random.Generator) -> list[str]:
    """The sequence of tasks for one epoch of ``steps`` steps."""
    tasks = sorted(probabilities)
    return list(rng.choice(tasks, size=steps, p=[probabilities[t] for t in tasks]))
