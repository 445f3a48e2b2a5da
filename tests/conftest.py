import contextlib
import json
import threading
import time

import pytest

from hmtl.data.document import Document, Relation, Span

SENTENCES = [
    [("Ada", "B-PER"), ("Lovelace", "I-PER"), ("lived", "O"), ("in", "O"), ("London", "B-LOC"), (".", "O")],
    [("IBM", "B-ORG"), ("hired", "O"), ("Grace", "B-PER"), ("Hopper", "I-PER"), (".", "O")],
    [("Paris", "B-LOC"), ("is", "O"), ("in", "O"), ("France", "B-LOC"), (".", "O")],
    [("She", "O"), ("joined", "O"), ("Google", "B-ORG"), ("in", "O"), ("Zurich", "B-LOC"), (".", "O")],
]


FOUR_TASKS = [("ner", "crf_tagger", "a"), ("emd", "span_classifier", "a"), ("re", "relation", "b"),
              ("coref", "coreference", "b")]


def four_task_config(embedder: dict | None = None, hidden_size: int = 8) -> dict:
    """The quick start's four task types (tagger and span classifier on level a, relation and coreference on b)
    over the dataset ``toy``; a char-CNN alone unless ``embedder`` says otherwise."""
    return {
        "data": {"toy": {"reader": "dygie"}},
        "embedder": embedder or {"char_cnn": {"embedding_dim": 8, "num_filters": 8}},
        "levels": [{"name": "a", "hidden_size": hidden_size}, {"name": "b", "hidden_size": hidden_size}],
        "tasks": [{"name": name, "type": kind, "level": level, "datasets": ["toy"]} for name, kind, level in FOUR_TASKS],
    }


def toy_document() -> Document:
    """Two sentences with entities, a relation and a coreference chain: something for every task type."""
    ada, london, she = Span(0, 2, "PER"), Span(4, 5, "LOC"), Span(6, 7, "PER")
    return Document("d", [["Ada", "Lovelace", "lived", "in", "London", "."], ["She", "wrote", "."]],
                    entities=[ada, london, she], relations=[Relation(ada, london, "Live_In")],
                    clusters=[[Span(0, 2), Span(6, 7)]])


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
    from hmtl.checks import load_config
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


@contextlib.contextmanager
def serving(app):
    """The real uvicorn server on a free loopback port, in a thread; yields the port."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
