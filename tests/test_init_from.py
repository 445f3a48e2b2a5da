"""Fine-tuning from a trained model (--init_from) and frozen levels / embedder."""
import json
import shutil

import pytest
from safetensors.torch import load_file

from hmtl.checks import load_config
from hmtl.cli import train_main
from hmtl.errors import HmtlError
from hmtl.training.trainer import Trainer


def new_config(trained, tmp_path, dataset="other", freeze_level=False, freeze_embedder=False, label_map=None):
    """The trained tiny model's config on a dataset under another name (so a new namespace), optionally frozen."""
    raw = json.loads((trained / "config.json").read_text())
    raw["data"] = {dataset: {**raw["data"]["tiny"], "label_map": label_map or {}}}
    raw["tasks"][0]["datasets"] = [dataset]
    raw["levels"][0]["freeze"] = freeze_level
    raw["embedder"]["freeze"] = freeze_embedder
    raw["trainer"]["num_epochs"] = 2
    path = tmp_path / f"{dataset}.json"
    path.write_text(json.dumps(raw))
    return load_config(path)


def weights(folder):
    return load_file(str(folder / "model.safetensors"))


def test_matching_weights_are_loaded_and_frozen_ones_stay_bit_identical(trained_tiny_ner, tmp_path):
    out = tmp_path / "fine_tuned"
    Trainer(new_config(trained_tiny_ner, tmp_path, freeze_level=True), out, init_from=trained_tiny_ner).train()
    report = json.loads((out / "init_from.json").read_text())["modules"]
    assert report["levels.0"] == {"loaded": 8, "new": 0, "skipped": 0}
    assert report["embedder.char_cnn"]["loaded"] == 3 and report["embedder.char_cnn"]["new"] == 0
    assert report["tasks.ner.projections.other__ner"] == {"loaded": 0, "new": 2, "skipped": 0}
    before, after = weights(trained_tiny_ner / "best"), weights(out / "best")
    for name in after:
        if name.startswith("levels.0."):
            assert after[name].equal(before[name]), name  # frozen: untouched by two epochs of training
    assert not after["embedder.char_cnn.embedding.weight"].equal(before["embedder.char_cnn.embedding.weight"])


def test_frozen_embedder_and_a_head_over_other_labels(trained_tiny_ner, tmp_path):
    out = tmp_path / "relabelled"
    config = new_config(trained_tiny_ner, tmp_path, dataset="tiny", freeze_embedder=True, label_map={"ORG": "Company"})
    Trainer(config, out, init_from=trained_tiny_ner).train()
    report = json.loads((out / "init_from.json").read_text())["modules"]
    assert report["tasks.ner.projections.tiny__ner"] == {"loaded": 0, "new": 0, "skipped": 2}  # 4 types, not the same ones
    before, after = weights(trained_tiny_ner / "best"), weights(out / "best")
    for name in after:
        if name.startswith("embedder."):
            assert after[name].equal(before[name]), name
    assert not after["levels.0.lstm.weight_ih_l0"].equal(before["levels.0.lstm.weight_ih_l0"])


def test_init_from_errors_are_one_line(trained_tiny_ner, tmp_path, capsys):
    config = trained_tiny_ner / "config.json"
    weights_only = tmp_path / "weights_only"
    weights_only.mkdir()
    shutil.copy(trained_tiny_ner / "best" / "model.safetensors", weights_only)
    for extra, message in [(["--init_from", str(tmp_path / "nothing")], "has no trained model"),
                           (["--init_from", str(weights_only)], f"{weights_only} is not a saved hmtl model: config.json "
                                                                "is missing (a model folder holds model.safetensors"),
                           (["--init_from", str(trained_tiny_ner), "--recover"], "--init_from: a resumed run continues")]:
        with pytest.raises(SystemExit) as exit_info:
            train_main(["--config_file_path", str(config), "--serialization_dir", str(tmp_path / "run"), *extra])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
    with pytest.raises(HmtlError, match="freeze: true keeps the transformer fixed too"):
        raw = json.loads(config.read_text())
        raw["embedder"] = {"transformer": {"fine_tune": True}, "freeze": True}
        (tmp_path / "bad.json").write_text(json.dumps(raw))
        load_config(tmp_path / "bad.json")
