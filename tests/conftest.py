import json

import pytest

SENTENCES = [
    [("Ada", "B-PER"), ("Lovelace", "I-PER"), ("lived", "O"), ("in", "O"), ("London", "B-LOC"), (".", "O")],
    [("IBM", "B-ORG"), ("hired", "O"), ("Grace", "B-PER"), ("Hopper", "I-PER"), (".", "O")],
    [("Paris", "B-LOC"), ("is", "O"), ("in", "O"), ("France", "B-LOC"), (".", "O")],
    [("She", "O"), ("joined", "O"), ("Google", "B-ORG"), ("in", "O"), ("Zurich", "B-LOC"), (".", "O")],
]


def write_conll(path, sentences, repeat=1):
    lines = ["-DOCSTART- -X- O O", ""]
    for _ in range(repeat):
        for sentence in sentences:
            lines += [f"{token} NN I-NP {tag}" for token, tag in sentence] + [""]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_tiny_ner_config(folder, epochs=3):
    """A small, fast NER config over a tiny CoNLL corpus written to ``folder``; returns the config path."""
    train = write_conll(folder / "train.conll", SENTENCES, repeat=3)
    dev = write_conll(folder / "dev.conll", SENTENCES)
    config = {
        "seed": 3,
        "data": {"tiny": {"reader": "conll2003", "train": str(train), "validation": str(dev), "test": str(dev)}},
        "embedder": {"char_cnn": {"embedding_dim": 8, "num_filters": 8}, "dropout": 0.1},
        "levels": [{"name": "low", "hidden_size": 16, "dropout": 0.1}],
        "tasks": [{"name": "ner", "type": "crf_tagger", "level": "low", "datasets": ["tiny"]}],
        "trainer": {"num_epochs": epochs, "batch_size": 4, "learning_rate": 0.01, "validation_metric": "+MEAN__ner_f1"},
    }
    path = folder / "config.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture
def tiny_ner_config(tmp_path):
    return write_tiny_ner_config(tmp_path)


@pytest.fixture(scope="session")
def trained_tiny_ner(tmp_path_factory):
    """A tiny NER model trained until it tags its training sentences (dev F1 100); returns its serialization dir."""
    from hmtl.config import load_config
    from hmtl.training.trainer import Trainer

    folder = tmp_path_factory.mktemp("tiny_ner")
    out = folder / "run"
    test = Trainer(load_config(write_tiny_ner_config(folder, epochs=20)), out).train()
    assert test["tiny__ner_f1"] == 100.0
    return out


def assert_names(error, path, line):
    """A DataFormatError names the file and, where there is one, the line (``path:line: ...``)."""
    assert error.path == str(path)
    assert error.line == line
    assert str(path) in str(error)
    if line is not None:
        assert f"{path}:{line}:" in str(error)


def train_heads(model, instances: dict, steps: int, learning_rate: float) -> None:
    """Adam on each task's instances (one batch each) in turn, ``steps`` times: the toy learning tests' loop."""
    import torch

    optimizer = torch.optim.Adam(model.parameters(), learning_rate)
    for _ in range(steps):
        for name, found in instances.items():
            optimizer.zero_grad()
            model(model.collate([(name, found)]))[name].backward()
            optimizer.step()
