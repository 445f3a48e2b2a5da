"""docs/CONFIG.md is what scripts/config_reference.py makes of the code that checks a config: regenerated here, so
a key added, renamed or given another default without regenerating it fails."""
import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "config_reference.py"
spec = importlib.util.spec_from_file_location("config_reference", SCRIPT)
config_reference = importlib.util.module_from_spec(spec)
spec.loader.exec_module(config_reference)


def test_the_committed_config_reference_is_up_to_date():
    assert config_reference.OUTPUT.read_text() == config_reference.render(), (
        "docs/CONFIG.md is out of date: run python scripts/config_reference.py")


def test_it_holds_every_key_with_its_default_and_meaning():
    text = config_reference.OUTPUT.read_text()
    assert "| `trainer.patience` | integer (≥ 1) | `5` | epochs without a better validation_metric" in text
    assert "| `private_encoder.hidden_size` | integer (≥ 1) | required |" in text  # a task option's own section
    assert "| `temperature` | number (> 0) | `2.0` |" in text  # a sampler's option
    assert "| `tag_column` | integer | `-1` | index of the entity tag column" in text  # a reader's option
