"""End-to-end runs of the shipped configs on the real corpora (skipped when data/ has not been set up)."""
import json
import os
from pathlib import Path

import pytest
import torch

from hmtl.checks import load_config
from hmtl.training.trainer import Trainer

DATA = Path(os.environ.get("HMTL_DATA_DIR", "data"))
CONFIGS = Path(__file__).parent.parent / "configs"
needs_data = pytest.mark.skipif(
    not all((DATA / corpus).is_dir() for corpus in ("conll2003", "gum", "conll04")),
    reason="real corpora not set up (bash scripts/data_setup.sh)",
)


@needs_data
@pytest.mark.slow
def test_full_hierarchy_config_trains_on_every_real_corpus(tmp_path):
    """A few steps of configs/hmtl.json on a slice of each corpus: the readers find each corpus's annotations, every
    task trains (its loss on its training slice falls), and the test metrics of every namespace come with their
    means (one dataset per task: MEAN__<task> is that namespace's figure, MEAN__all the mean of the four)."""
    overrides = {
        "trainer": {"num_epochs": 1, "max_steps_per_epoch": 12, "bf16": False},
        "data": {name: {"max_documents": n} for name, n in (("conll03", 3), ("gum", 2), ("conll04", 40), ("ontogum", 2))},
    }
    trainer = Trainer(load_config(CONFIGS / "hmtl.json", overrides), tmp_path / "run")
    untrained = {name: tensor.clone() for name, tensor in trainer.model.state_dict().items()}
    test = trainer.train()  # trainer.model then holds the best weights
    labels = json.loads((tmp_path / "run" / "labels.json").read_text())["tasks"]
    assert {"B-PER", "E-LOC", "S-ORG"} <= set(labels["ner"]["conll03__ner"])
    assert {"person", "place"} <= set(labels["emd"]["gum__emd"])
    assert {"Live_In", "Work_For"} <= set(labels["relation"]["conll04__relation"]["relations"])
    trained_losses = training_losses(trainer)
    trainer.model.load_state_dict(untrained)
    untrained_losses = training_losses(trainer)
    for task, loss in trained_losses.items():
        assert loss < untrained_losses[task], (task, loss, untrained_losses[task])
    main = {"MEAN__ner_f1": "conll03__ner_f1", "MEAN__emd_f1": "gum__emd_f1",
            "MEAN__relation_strict_micro_f1": "conll04__relation_strict_micro_f1",
            "MEAN__coref_avg_f1": "ontogum__coref_avg_f1"}
    for mean_key, namespace_key in main.items():
        assert test[mean_key] == pytest.approx(test[namespace_key])
    assert test["MEAN__all"] == pytest.approx(sum(test[key] for key in main) / 4)
    assert {"conll03__ner_precision", "gum__emd_recall", "ontogum__coref_muc_f1"} <= set(test)


def training_losses(trainer: Trainer) -> dict[str, float]:
    """Each task's loss over its whole training slice (one batch, no dropout)."""
    model = trainer.model.eval()
    with torch.no_grad():
        return {task: model(model.collate([(task, instances)]))[task].item()
                for task, instances in trainer.instances["train"].items()}


@needs_data
@pytest.mark.slow
def test_conll03_bilstm_crf_learns_in_one_epoch(tmp_path):
    test = Trainer(load_config(CONFIGS / "ner_conll03.json", {"trainer": {"num_epochs": 1}}), tmp_path / "run").train()
    assert test["conll03__ner_f1"] > 75.0
