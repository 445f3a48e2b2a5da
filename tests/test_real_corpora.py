"""End-to-end runs of the shipped configs on the real corpora (skipped when data/ has not been set up)."""
import os
from pathlib import Path

import pytest

from hmtl.config import load_config
from hmtl.training.trainer import Trainer

DATA = Path(os.environ.get("HMTL_DATA_DIR", "data"))
CONFIGS = Path(__file__).parent.parent / "configs"
needs_data = pytest.mark.skipif(
    not all((DATA / corpus).is_dir() for corpus in ("conll2003", "gum", "conll04")),
    reason="real corpora not set up (bash scripts/data_setup.sh)",
)


@needs_data
def test_full_hierarchy_config_trains_on_every_real_corpus(tmp_path):
    """A few steps of configs/hmtl.json on a slice of each corpus: readers, all four task types, and the test
    metrics of every namespace with their means (one dataset per task: MEAN__<task> is that namespace's figure,
    MEAN__all the mean of the four)."""
    overrides = {
        "trainer": {"num_epochs": 1, "max_steps_per_epoch": 12, "bf16": False},
        "data": {name: {"max_documents": n} for name, n in (("conll03", 3), ("gum", 2), ("conll04", 40), ("ontogum", 2))},
    }
    test = Trainer(load_config(CONFIGS / "hmtl.json", overrides), tmp_path / "run").train()
    main = {"MEAN__ner_f1": "conll03__ner_f1", "MEAN__emd_f1": "gum__emd_f1",
            "MEAN__relation_strict_micro_f1": "conll04__relation_strict_micro_f1",
            "MEAN__coref_avg_f1": "ontogum__coref_avg_f1"}
    for mean_key, namespace_key in main.items():
        assert test[mean_key] == pytest.approx(test[namespace_key])
    assert test["MEAN__all"] == pytest.approx(sum(test[key] for key in main) / 4)
    assert {"conll03__ner_precision", "gum__emd_recall", "ontogum__coref_muc_f1"} <= set(test)


@needs_data
@pytest.mark.slow
def test_conll03_bilstm_crf_learns_in_one_epoch(tmp_path):
    test = Trainer(load_config(CONFIGS / "ner_conll03.json", {"trainer": {"num_epochs": 1}}), tmp_path / "run").train()
    assert test["conll03__ner_f1"] > 75.0
