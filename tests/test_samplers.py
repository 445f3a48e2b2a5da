"""Task samplers: the share of steps each group gets, epoch by epoch; ``sampler`` config errors; a sampler of the
user's own, named through ``include``."""
import json
import sys
from collections import Counter

import numpy as np
import pytest

from conftest import SENTENCES, write_conll
from hmtl.checks import load_config, parse_config
from hmtl.config import SamplerConfig
from hmtl.errors import ConfigError
from hmtl.registry import SAMPLERS
from hmtl.training.samplers import task_probabilities, task_schedule
from hmtl.training.trainer import Trainer

SIZES = {"big": 60, "mid": 30, "small": 10}  # batches per group
STEPS = 20_000  # the share's standard deviation is at most 0.0035


def flattened(alpha: float) -> dict[str, float]:
    """p ~ n^alpha over SIZES."""
    total = sum(n ** alpha for n in SIZES.values())
    return {group: n ** alpha / total for group, n in SIZES.items()}


def drawn_shares(sampler: dict, epoch: int = 1, num_epochs: int = 1) -> tuple[dict, dict]:
    """The probabilities and the shares of STEPS steps drawn from them, as the trainer draws an epoch."""
    probabilities = task_probabilities(SIZES, SamplerConfig.model_validate(sampler), epoch, num_epochs)
    counts = Counter(task_schedule(probabilities, STEPS, np.random.default_rng(0)))
    return probabilities, {group: counts[group] / STEPS for group in SIZES}


@pytest.mark.parametrize("sampler, epoch, num_epochs, expected", [
    ({"type": "uniform"}, 1, 1, {"big": 1 / 3, "mid": 1 / 3, "small": 1 / 3}),
    ({"type": "proportional"}, 1, 1, {"big": 0.6, "mid": 0.3, "small": 0.1}),
    ({}, 1, 1, {"big": 0.6, "mid": 0.3, "small": 0.1}),  # the default
    ({"type": "temperature"}, 1, 1, flattened(1 / 2)),  # T = 2 by default
    ({"type": "temperature", "temperature": 4.0}, 1, 1, flattened(1 / 4)),
    ({"type": "annealed"}, 1, 5, {"big": 0.6, "mid": 0.3, "small": 0.1}),
    ({"type": "annealed"}, 3, 5, flattened(0.6)),  # alpha = 1 - 0.8 * 2 / 4
    ({"type": "annealed"}, 5, 5, flattened(0.2)),
    ({"type": "annealed"}, 1, 1, {"big": 0.6, "mid": 0.3, "small": 0.1}),  # one epoch: proportional
])
def test_each_group_gets_its_share_of_the_steps(sampler, epoch, num_epochs, expected):
    probabilities, shares = drawn_shares(sampler, epoch, num_epochs)
    assert probabilities == pytest.approx(expected, abs=1e-12)
    assert shares == pytest.approx(expected, abs=0.015)


def test_annealed_moves_from_proportional_towards_uniform():
    epochs = [drawn_shares({"type": "annealed"}, epoch, 10)[0] for epoch in range(1, 11)]
    assert epochs[0] == drawn_shares({"type": "proportional"})[0]
    assert max(abs(p - 1 / 3) for p in epochs[-1].values()) < 0.065  # near uniform (proportional is 0.27 off)
    smallest = [p["small"] for p in epochs]
    assert smallest == sorted(smallest) and len(set(smallest)) == 10  # the small group gains every epoch


def two_task_config(folder, sampler: dict, epochs: int = 3) -> dict:
    """Two NER tasks, the first over 12 training sentences (3 batches), the second over 4 (1 batch)."""
    big = write_conll(folder / "big.conll", SENTENCES, repeat=3)
    small = write_conll(folder / "small.conll", SENTENCES)
    return {
        "seed": 3,
        "data": {"big": {"reader": "conll2003", "train": str(big), "validation": str(small), "test": str(small)},
                 "small": {"reader": "conll2003", "train": str(small), "validation": str(small), "test": str(small)}},
        "embedder": {"char_cnn": {"embedding_dim": 8, "num_filters": 8}, "dropout": 0.1},
        "levels": [{"name": "low", "hidden_size": 16, "dropout": 0.1}],
        "tasks": [{"name": "ner", "type": "crf_tagger", "level": "low", "datasets": ["big"]},
                  {"name": "ner2", "type": "crf_tagger", "level": "low", "datasets": ["small"]}],
        "sampler": sampler,
        "trainer": {"num_epochs": epochs, "batch_size": 4, "validation_metric": "+MEAN__ner_f1"},
    }


def test_the_trainer_tells_the_sampler_the_epoch_and_logs_its_probabilities(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    Trainer(parse_config(two_task_config(tmp_path, {"type": "annealed"})), tmp_path / "run").train()
    events = EventAccumulator(str(tmp_path / "run" / "log"))
    events.Reload()
    logged = {group: [(e.step, round(e.value, 4)) for e in events.Scalars(f"sampling/{group}")] for group in ("ner", "ner2")}
    small = [1 / 4, 1 / (3 ** 0.6 + 1), 1 / (3 ** 0.2 + 1)]  # alpha 1, 0.6, 0.2 over 3 batches and 1
    assert logged == {"ner": [(e, round(1 - p, 4)) for e, p in enumerate(small, 1)],
                      "ner2": [(e, round(p, 4)) for e, p in enumerate(small, 1)]}


# ---------------------------------------------------------------- the sampler section of the config


def test_an_unknown_sampler_is_one_line_naming_the_key_and_the_known_samplers(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(two_task_config(tmp_path, {"type": "anealed"})))
    for corpus in ("big.conll", "small.conll"):  # the error comes before any data is read
        (tmp_path / corpus).unlink()
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value) == (f"{path}: sampler.type: unknown sampler 'anealed'; "
                                "known: annealed, proportional, temperature, uniform")


@pytest.mark.parametrize("sampler, message", [
    ({"type": "temperature", "temperature": 0.0}, "sampler.temperature: Input should be greater than 0"),
    ({"type": "temperature", "temperature": "2"}, "sampler.temperature: Input should be a valid number"),
    ({"type": "temperature", "temprature": 2.0}, "sampler.temprature: unknown option of sampler 'temperature'; it takes temperature"),
    ({"type": "annealed", "temperature": 2.0}, "sampler.temperature: unknown option of sampler 'annealed'; it takes no options"),
    ({"type": "uniform", "temperature": 3.0}, "sampler.temperature: unknown option of sampler 'uniform'; it takes no options"),
])
def test_a_bad_sampler_option_names_its_dotted_key(tmp_path, sampler, message):
    with pytest.raises(ConfigError, match=f"^config: {message}$"):
        parse_config(two_task_config(tmp_path, sampler))


@pytest.mark.parametrize("sampler_type", ["uniform", "proportional"])
def test_runs_saved_when_every_sampler_had_a_temperature_still_load(tmp_path, sampler_type):
    saved = two_task_config(tmp_path, {"type": sampler_type, "temperature": 2.0})  # the old config.json's section
    assert parse_config(saved).sampler.type == sampler_type


# ---------------------------------------------------------------- a sampler of the user's own

USER_MODULE = '''
from pydantic import Field

from hmtl.registry import SAMPLERS
from hmtl.training.samplers import Sampler


@SAMPLERS.register("favourite")
class Favourite(Sampler):
    class Options(Sampler.Options):
        group: str
        share: float = Field(gt=0, lt=1)

    def probabilities(self, sizes, epoch, num_epochs):
        rest = (1 - self.options.share) / (len(sizes) - 1)
        return {group: self.options.share if group == self.options.group else rest for group in sizes}
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """``my_samplers.py`` in a folder on sys.path; its sampler is unregistered and the module forgotten afterwards."""
    (tmp_path / "my_samplers.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(SAMPLERS, "_entries", dict(SAMPLERS._entries))
    yield "my_samplers"
    sys.modules.pop("my_samplers", None)


def test_a_sampler_of_the_users_own_module_is_named_through_include(tmp_path, user_module):
    raw = {**two_task_config(tmp_path, {"type": "favourite", "group": "ner2", "share": 0.9}), "include": [user_module]}
    config = parse_config(raw)
    assert parse_config(json.loads(config.model_dump_json())) == config  # as a saved run's config.json loads
    counts = Counter(task_schedule(task_probabilities({"ner": 3, "ner2": 1}, config.sampler), STEPS, np.random.default_rng(0)))
    assert counts["ner2"] / STEPS == pytest.approx(0.9, abs=0.015)
    with pytest.raises(ConfigError, match=r"^config: sampler\.share: Input should be less than 1$"):
        parse_config({**raw, "sampler": {"type": "favourite", "group": "ner2", "share": 1.5}})


def test_a_module_that_cannot_be_imported_is_named_by_its_include_key(tmp_path):
    with pytest.raises(ConfigError, match=r"^config: include\[1\]: cannot import 'no_such_samplers' "):
        parse_config({**two_task_config(tmp_path, {}), "include": ["json", "no_such_samplers"]})


def test_a_sampler_with_one_group_to_draw_from_is_warned_about_with_the_chain_that_would_give_it_more(tmp_path, caplog):
    from hmtl.training.trainer import warn_single_group

    raw = two_task_config(tmp_path, {"type": "uniform"})
    raw["tasks"] = [{"name": "ner", "type": "crf_tagger", "level": "low", "datasets": ["big", "small"]}]
    warn_single_group(parse_config(raw))
    assert caplog.messages == ["sampler.type 'uniform' has one group to draw from (ner): every sampler trains the same "
                               'steps; to sample its datasets, give each its group: "chain": "big__ner|small__ner"']
    caplog.clear()
    for changes in ({"chain": "big__ner|small__ner"}, {"sampler": {"type": "proportional"}}):
        warn_single_group(parse_config({**raw, **changes}))  # a group per dataset; the default sampler
    assert caplog.messages == []
