import json
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hmtl.checks import load_config
from hmtl.cli import evaluate_main, train_main
from hmtl.errors import ConfigError, HmtlError
from hmtl.model import load_model
from hmtl.training.trainer import Trainer


def train(config_path, out, overrides=None, recover=False):
    config = load_config(out / "config.json" if recover else config_path, overrides, expand=not recover)
    return Trainer(config, out, recover=recover).train()


def epochs(out):
    return [e["validation"] for e in json.loads((out / "metrics.json").read_text())["epochs"]]


def test_training_writes_the_whole_story(tiny_ner_config, tmp_path):
    out = tmp_path / "run"
    test = train(tiny_ner_config, out)
    assert test["MEAN__ner_f1"] == test["tiny__ner_f1"]
    for name in ("config.json", "labels.json", "metrics.json", "best/model.safetensors", "last/trainer_state.pt"):
        assert (out / name).exists(), name
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "log"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"epoch_loss/ner", "sampling/ner", "validation/MEAN__ner_f1", "validation/tiny__ner_f1"} <= tags
    metrics = json.loads((out / "metrics.json").read_text())
    (test_f1,) = events.Scalars("test/tiny__ner_f1")  # the test metrics beside the curves, at the best epoch
    assert (test_f1.step, round(test_f1.value, 4)) == (metrics["best_epoch"], round(test["tiny__ner_f1"], 4))
    assert len(metrics["epochs"]) == 3 and metrics["test"] == test and "best_epoch" in metrics
    # each epoch's training steps alone, and the epoch with its validation and checkpoint
    assert all(0 < e["train_seconds"] <= e["seconds"] for e in metrics["epochs"])
    model = load_model(out)
    layers, mask = model.encode_layers([["Ada", "lived", "in", "Paris"]])
    assert set(layers) == {"embedder", "low"} and layers["low"].shape[:2] == mask.shape


def test_train_command_tells_where_it_is_and_what_the_final_table_is(tiny_ner_config, tmp_path, capsys, caplog):
    caplog.set_level("INFO")
    train_main(["--config_file_path", str(tiny_ner_config), "--serialization_dir", str(tmp_path / "run")])
    best = json.loads((tmp_path / "run" / "metrics.json").read_text())["best_epoch"]
    assert f"test metrics of the best model (epoch {best} of 3, {tmp_path / 'run' / 'best'}):" in capsys.readouterr().out
    progress = [r.getMessage() for r in caplog.records if r.name == "hmtl.progress"]
    assert progress[0].startswith("epoch 1/3: 3/3 steps (") and "ETA 0s, loss ner " in progress[0]
    assert "run ETA" in progress[0] and progress[-1].startswith("epoch 3/3: 3/3 steps")


def test_ctrl_c_says_where_the_last_checkpoint_is_and_how_to_resume(tiny_ner_config, tmp_path):
    out, log = tmp_path / "run", tmp_path / "stderr.txt"
    # epochs enough that a slow poll on a loaded machine still finds the run training
    overrides = json.dumps({"trainer": {"num_epochs": 100000, "patience": 100000, "checkpoint_every_updates": 1}})
    command = [sys.executable, "train.py", "--config_file_path", str(tiny_ner_config), "--serialization_dir", str(out),
               "--overrides", overrides]
    with open(log, "w") as stderr:
        process = subprocess.Popen(command, cwd=Path(__file__).parents[1], stderr=stderr, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while not (out / "last" / "trainer_state.pt").exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=120) == 130
    lines = log.read_text().strip().splitlines()
    assert "Traceback" not in log.read_text()
    assert lines[-1] == (f"interrupted: the last checkpoint is {out / 'last'}; resume with: python train.py "
                         f"--config_file_path {tiny_ner_config} --serialization_dir {out} --recover --overrides "
                         f"{shlex.quote(overrides)}")
    assert not (out / ".lock").exists()


def test_fixed_seed_gives_identical_metrics(tiny_ner_config, tmp_path):
    train(tiny_ner_config, tmp_path / "a")
    train(tiny_ner_config, tmp_path / "b")
    assert epochs(tmp_path / "a") == epochs(tmp_path / "b")


def test_recover_continues_exactly_where_it_stopped(tiny_ner_config, tmp_path):
    train(tiny_ner_config, tmp_path / "straight")
    train(tiny_ner_config, tmp_path / "interrupted", {"trainer": {"num_epochs": 2}})
    train(tiny_ner_config, tmp_path / "interrupted", {"trainer": {"num_epochs": 3}}, recover=True)
    assert epochs(tmp_path / "interrupted") == epochs(tmp_path / "straight")


def test_recover_with_overrides_that_change_the_model_shape_is_one_line(tiny_ner_config, tmp_path):
    out = tmp_path / "run"
    train(tiny_ner_config, out, {"trainer": {"num_epochs": 1}})
    levels = json.loads((out / "config.json").read_text())["levels"]
    wider = [{**level, "hidden_size": level["hidden_size"] + 2} for level in levels]
    with pytest.raises(HmtlError, match=r"last: the weights do not fit the model its config describes \(the run's "
                                        r"config.json, with --overrides if any\): size mismatch"):
        train(tiny_ner_config, out, {"levels": wider, "trainer": {"num_epochs": 2}}, recover=True)


def test_existing_run_is_not_overwritten_and_recover_needs_a_checkpoint(tiny_ner_config, tmp_path):
    out = tmp_path / "run"
    train(tiny_ner_config, out, {"trainer": {"num_epochs": 1}})
    with pytest.raises(HmtlError, match="--recover"):
        train(tiny_ner_config, out)
    with pytest.raises(HmtlError, match="no checkpoint"):
        Trainer(load_config(tiny_ner_config), tmp_path / "empty", recover=True)


def test_unknown_validation_metric_is_named(tiny_ner_config, tmp_path):
    with pytest.raises(ConfigError, match="MEAN__ner_f2"):
        train(tiny_ner_config, tmp_path / "run", {"trainer": {"num_epochs": 1, "validation_metric": "+MEAN__ner_f2"}})


def test_cli_train_and_evaluate(tiny_ner_config, tmp_path, capsys):
    out = tmp_path / "cli"
    train_main(["--config_file_path", str(tiny_ner_config), "--serialization_dir", str(out), "--overrides", '{"trainer": {"num_epochs": 1}}'])
    assert json.loads((out / "config.json").read_text())["trainer"]["num_epochs"] == 1
    evaluate_main(["--serialization_dir", str(out)])
    assert "tiny__ner_f1" in json.loads((out / "evaluation.json").read_text())
    dev = json.loads((out / "config.json").read_text())["data"]["tiny"]["validation"]
    evaluate_main(["--serialization_dir", str(out), "--evaluation_data_file", dev, "--output_file", str(tmp_path / "e.json")])
    assert (tmp_path / "e.json").exists()
    assert "MEAN__ner_f1" in capsys.readouterr().out
    # inference settings can be changed; the model's shape cannot
    evaluate_main(["--serialization_dir", str(out), "--overrides", '{"trainer": {"bf16": true}}', "--output_file", str(tmp_path / "b.json")])
    assert "tiny__ner_f1" in json.loads((tmp_path / "b.json").read_text())
    for overrides, message in [('{"levels": [{"name": "low", "hidden_size": 3}]}', "do not fit the model its config describes with --overrides"),
                               ("[1]", "--overrides must be a JSON object"), ("{oops", "--overrides is not valid JSON")]:
        with pytest.raises(SystemExit):
            evaluate_main(["--serialization_dir", str(out), "--overrides", overrides])
        assert message in capsys.readouterr().err


def test_cli_reports_user_errors_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate_main(["--serialization_dir", str(tmp_path / "nothing")])
    assert exit_info.value.code == 2
    assert "has no trained model" in capsys.readouterr().err


def test_label_file_in_the_wrong_format_is_named(tiny_ner_config, tmp_path):
    out = tmp_path / "run"
    train(tiny_ner_config, out, {"trainer": {"num_epochs": 1}})
    labels = out / "best" / "labels.json"
    labels.write_text('["O", "B-PER"]')
    with pytest.raises(HmtlError, match=r"labels.json: expected"):
        load_model(out)
    labels.write_text('{"characters": [], "tasks": {}}')
    with pytest.raises(HmtlError, match="no labels for task 'ner'"):
        load_model(out)
    labels.write_text("{oops")
    with pytest.raises(HmtlError, match=r"labels.json:1: not valid JSON"):
        load_model(out)


def test_one_hmtl_command_runs_every_script(tiny_ner_config, tmp_path, capsys):
    import tomllib
    from pathlib import Path

    from hmtl.cli import main

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["hmtl"] == "hmtl.cli:main"
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    listed = capsys.readouterr().out
    assert all(f"  {name} " in listed for name in ("train", "evaluate", "predict", "probe", "build-probing-tasks"))
    out = tmp_path / "run"
    main(["train", "--config_file_path", str(tiny_ner_config), "--serialization_dir", str(out), "--overrides", '{"trainer": {"num_epochs": 1}}'])
    assert (out / "best" / "model.safetensors").exists()
    with pytest.raises(SystemExit) as exit_info:
        main(["serve-me"])
    assert exit_info.value.code == 2 and "unknown command 'serve-me'" in capsys.readouterr().err
