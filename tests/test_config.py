import json
from pathlib import Path

import pytest

from hmtl.checks import load_config
from hmtl.config import deep_merge
from hmtl.errors import ConfigError

BASE = {
    "data": {"toy": {"reader": "conll2003", "train": "${HMTL_DATA_DIR}/toy.conll"}},
    "levels": [{"name": "low"}],
    "tasks": [{"name": "ner", "type": "crf_tagger", "level": "low", "datasets": ["toy"]}],
}


def write(tmp_path, raw):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    return path


def test_loads_with_defaults_and_expands_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("HMTL_DATA_DIR", "/corpora")
    config = load_config(write(tmp_path, BASE))
    assert config.data["toy"].train == "/corpora/toy.conll"
    assert config.trainer.num_epochs == 30 and config.levels[0].hidden_size == 200


def test_overrides_merge_on_top(tmp_path):
    config = load_config(write(tmp_path, BASE), '{"trainer": {"num_epochs": 1}, "seed": 7}')
    assert config.trainer.num_epochs == 1 and config.seed == 7 and config.trainer.batch_size == 32


@pytest.mark.parametrize(
    "change, key",
    [
        ({"trainer": {"num_epochz": 1}}, "trainer.num_epochz"),
        ({"levels": [{"name": "low", "hidden": 3}]}, "levels[0].hidden"),
        ({"tasks": [{"name": "ner", "type": "crf_tagger", "level": "low"}]}, "tasks[0].datasets"),
        ({"trainer": {"batch_size": "many"}}, "trainer.batch_size"),
        ({"embedder": {"transformer": {"context": 101}}}, "embedder.transformer.context"),  # more than instances keep
    ],
)
def test_bad_key_is_named(tmp_path, change, key):
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        load_config(write(tmp_path, deep_merge(BASE, change)))


def test_unknown_level_and_dataset_are_named(tmp_path):
    bad_level = deep_merge(BASE, {"tasks": [{"name": "ner", "type": "crf_tagger", "level": "top", "datasets": ["toy"]}]})
    with pytest.raises(ConfigError, match=r"tasks\[0\].level: unknown level 'top'"):
        load_config(write(tmp_path, bad_level))
    bad_data = deep_merge(BASE, {"tasks": [{"name": "ner", "type": "crf_tagger", "level": "low", "datasets": ["x"]}]})
    with pytest.raises(ConfigError, match=r"tasks\[0\].datasets: unknown dataset 'x'"):
        load_config(write(tmp_path, bad_data))


def test_invalid_json_names_line_and_missing_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "seed": 1,\n  oops\n}')
    with pytest.raises(ConfigError, match="broken.json:3"):
        load_config(path)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.json")


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[1] / "configs").glob("*.json")), ids=lambda p: p.name)
def test_every_shipped_config_passes_validation(path):
    config = load_config(path)  # a ConfigError naming the key fails the test
    assert {d for task in config.tasks for d in task.datasets} <= set(config.data)
