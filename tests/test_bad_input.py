"""Bad input ends in a one-line error that names what and where (docs/ERRORS.md), and a crash at any point of
training or of a checkpoint swap loses nothing that ``--recover`` cannot continue from."""
import gzip
import json
import shutil

import pytest
import torch

from hmtl.checks import load_config
from hmtl.cli import evaluate_main, predict_main, train_main
from hmtl.config import deep_merge
from hmtl.data.readers.conll import ColumnReader, DygieReader
from hmtl.errors import ConfigError, DataFormatError, HmtlError
from hmtl.model import load_model
from hmtl.training.trainer import COMPLETE, Trainer, settle_checkpoint


def train(config_path, out, overrides=None, recover=False):
    config = load_config(out / "config.json" if recover else config_path, overrides, expand=not recover)
    return Trainer(config, out, recover=recover).train()


def epochs(out):
    return [e["validation"] for e in json.loads((out / "metrics.json").read_text())["epochs"]]


def run_cli(main, argv, capsys) -> str:
    """The one-line error a command prints (exit code 2)."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) >= 1 and err[-1].startswith("error: ") and "Traceback" not in "\n".join(err)
    return err[-1]


TASK = {"name": "ner", "type": "crf_tagger", "level": "low", "datasets": ["tiny"]}  # tiny_ner_config's


@pytest.mark.parametrize("overrides, message", [
    ({"trainer": {"batch_size": 0}}, "trainer.batch_size: Input should be greater than or equal to 1"),
    ({"trainer": {"batch_size": "8"}}, "trainer.batch_size: Input should be a valid integer"),
    ({"trainer": {"learning_rate": -0.1}}, "trainer.learning_rate: Input should be greater than 0"),
    ({"trainer": {"num_epochs": -1}}, "trainer.num_epochs: Input should be greater than or equal to 1"),
    ({"levels": [{"name": "low", "dropout": 1.5}]}, "levels[0].dropout: Input should be less than 1"),
    ({"tasks": []}, "tasks: List should have at least 1 item"),
    ({"trainer": {"validation_metric": "+MEAN__f1"}}, "trainer.validation_metric: 'MEAN__f1' is not a metric"),
    # the checks after the schema's: references, the chain, the registries
    ({"chain": "corref"}, "chain: 'corref' is neither a task nor a namespace"),
    ({"tasks": [{**TASK, "level": "top"}]}, "tasks[0].level: unknown level 'top'"),
    ({"tasks": [{**TASK, "datasets": ["nope"]}]}, "tasks[0].datasets: unknown dataset 'nope'"),
    ({"tasks": [{**TASK, "options": {"privat_encoder": {}}}]}, "tasks.ner.options.privat_encoder: Extra inputs"),
    ({"data": {"tiny": {"reader": "conll2030"}}}, "data.tiny.reader: unknown reader 'conll2030'"),
    ({"data": {"tiny": {"reader_options": {"tag_col": 1}}}}, "data.tiny.reader_options.tag_col: unknown option"),
    ({"sampler": {"type": "anealed"}}, "sampler.type: unknown sampler 'anealed'"),
])
def test_bad_values_name_the_key_and_that_they_came_from_overrides(tiny_ner_config, tmp_path, capsys, overrides, message):
    out = tmp_path / "run"
    line = run_cli(train_main, ["--config_file_path", str(tiny_ner_config), "--serialization_dir", str(out),
                                "--overrides", json.dumps(overrides)], capsys)
    assert line.startswith(f"error: --overrides: {message}")
    assert not out.exists()  # nothing is left behind that would need --force next time


@pytest.mark.parametrize("change, message", [
    ({"levels": [{"name": "low", "dropout": 2}]}, "levels[0].dropout: Input should be less than 1"),
    ({"chain": "corref"}, "chain: 'corref' is neither a task nor a namespace"),
    ({"trainer": {"validation_metric": "+MEAN__f1"}}, "trainer.validation_metric: 'MEAN__f1' is not a metric"),
])
def test_a_bad_key_in_the_file_is_blamed_on_the_file(tiny_ner_config, change, message):
    tiny_ner_config.write_text(json.dumps(deep_merge(json.loads(tiny_ner_config.read_text()), change)))
    with pytest.raises(ConfigError) as error:
        load_config(tiny_ner_config, '{"trainer": {"num_epochs": 1}, "sampler": {"type": "uniform"}}')
    assert str(error.value).startswith(f"{tiny_ner_config}: {message}") and "Value error" not in str(error.value)


def test_unknown_reader_option_lists_the_options(tiny_ner_config):
    with pytest.raises(ConfigError, match=r"data.tiny.reader_options.tag_col: unknown option of reader 'conll2003'; it takes tag_column, token_column, extra_columns, sentences_per_document"):
        load_config(tiny_ner_config, '{"data": {"tiny": {"reader_options": {"tag_col": 1}}}}')


def test_serialization_dir_that_is_a_file(tiny_ner_config, tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    line = run_cli(train_main, ["--config_file_path", str(tiny_ner_config), "--serialization_dir", str(target)], capsys)
    assert f"--serialization_dir: {target} is a file" in line


@pytest.mark.parametrize("content, name, message, line", [
    (b"Ada B-PER\nx\xff B-PER\n", "bad.conll", "not UTF-8 text", 2),
    (b"not gzip at all\n", "fake.conll.gz", "not a gzip file, though its name ends in .gz", None),
    (gzip.compress("".join(f"w{i * 7919 % 10007} O\n" for i in range(5000)).encode())[:3000], "cut.conll.gz",
     "truncated or damaged", None),
])
def test_undecodable_corpus_files_are_named(tmp_path, content, name, message, line):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataFormatError) as error:
        ColumnReader().read(path)
    assert error.value.path == str(path) and message in str(error.value)
    if line is not None:
        assert error.value.line == line


def test_a_folder_given_as_a_corpus_file_and_a_missing_data_dir(tmp_path, monkeypatch):
    with pytest.raises(DataFormatError, match="is a folder; expected a corpus file"):
        ColumnReader().read(tmp_path)
    monkeypatch.delenv("HMTL_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataFormatError, match=r"file not found \(\$\{HMTL_DATA_DIR\} is not set.*scripts/data_setup.sh"):
        ColumnReader().read("data/conll2003/eng.train.gz")


def test_byte_order_mark_is_dropped(tmp_path):
    path = tmp_path / "bom.conll"
    path.write_bytes("\ufeff-DOCSTART- -X- O O\n\nAda NNP B-NP B-PER\n".encode("utf-8"))
    (document,) = ColumnReader().read(path)
    assert document.sentences == [["Ada"]]


def test_empty_token_in_json_lines_and_extra_column_messages(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"sentences": [["Ada"]]}) + "\n" + json.dumps({"sentences": [["Ada", ""]]}) + "\n")
    with pytest.raises(DataFormatError, match=r"c.jsonl:2: sentence 0 has an empty token at position 1"):
        DygieReader().read(path)
    extra = tmp_path / "extra.conll"
    extra.write_text("Ada NNP B-NP B-PER X\n")
    with pytest.raises(DataFormatError, match=r"extra.conll:1: invalid tag 'X'.* in column 5 of 5 \(the tag column is -1\)"):
        ColumnReader().read(extra)


def test_overlapping_spans_in_a_flat_tagger_are_logged(caplog):
    import logging

    from hmtl.checks import parse_config
    from hmtl.data.document import Document, Span
    from hmtl.model import HierarchicalModel
    from hmtl.training.trainer import build_labels

    config = parse_config({"data": {"t": {"reader": "dygie"}}, "levels": [{"name": "a", "hidden_size": 4}],
                           "embedder": {"char_cnn": {}},
                           "tasks": [{"name": "ner", "type": "crf_tagger", "level": "a", "datasets": ["t"]}]})
    document = Document("d", [["New", "York", "City", "Hall"]], entities=[Span(0, 3, "LOC"), Span(0, 2, "LOC"), Span(2, 4, "ORG")])
    model = HierarchicalModel(config, build_labels(config, {"t": [document]}))
    with caplog.at_level(logging.INFO):
        (instance,) = model.task("ner").instances([document], "t")
    assert instance.target == ["B-LOC", "I-LOC", "E-LOC", "O"]
    assert "t__ner: 2 nested or overlapping entities left out" in caplog.text


def test_damaged_model_and_foreign_trainer_state(tiny_ner_config, tmp_path, capsys):
    out = tmp_path / "run"
    train(tiny_ner_config, out, {"trainer": {"num_epochs": 1}})
    weights = out / "best" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(HmtlError, match=r"best/model.safetensors is damaged or not a safetensors file"):
        load_model(out)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, out / "last" / "trainer_state.pt")
    with pytest.raises(HmtlError) as error:
        train(tiny_ner_config, out, recover=True)
    assert "last/trainer_state.pt is not a trainer state" in str(error.value) and "weights_only" not in str(error.value)
    assert "pwned" not in capsys.readouterr().out


def test_recover_with_another_process_count_is_refused_before_any_corpus_is_read(tiny_ner_config, tmp_path, monkeypatch):
    out = tmp_path / "run"
    train(tiny_ner_config, out, {"trainer": {"num_epochs": 1}})
    path = out / "last" / "trainer_state.pt"
    state = torch.load(path, weights_only=True)  # as two torchrun processes leave it in the middle of epoch 2
    torch.save({**state, "world_size": 2, "in_epoch": json.dumps({"step": 1})}, path)
    monkeypatch.setattr("hmtl.training.trainer.load_datasets", lambda *_: pytest.fail("a corpus was read first"))
    with pytest.raises(HmtlError, match=r"^--recover: .*last was written in the middle of epoch 2 by 2 process\(es\); "
                                        r"resume it with as many \(torchrun --nproc_per_node 2\)$"):
        train(tiny_ner_config, out, recover=True)
    assert not (out / ".lock").exists()


def test_predict_checks_input_and_output_before_working(tiny_ner_config, tmp_path, capsys):
    out = tmp_path / "run"
    train(tiny_ner_config, out, {"trainer": {"num_epochs": 1}})
    text = tmp_path / "in.txt"
    text.write_text("Ada lived in Paris.\n")
    assert "--output_file: folder" in run_cli(predict_main, ["--serialization_dir", str(out), "--input_file", str(text),
                                                             "--output_file", str(tmp_path / "no" / "x.jsonl")], capsys)
    assert "--input_file: " in run_cli(predict_main, ["--serialization_dir", str(out), "--input_file", str(tmp_path / "none.txt")], capsys)
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    assert "not UTF-8 text" in run_cli(predict_main, ["--serialization_dir", str(out), "--input_file", str(binary)], capsys)
    long = tmp_path / "long.txt"
    long.write_text("Ada lived in Paris.\n\n" + "word " * 60 + "\n")
    assert f"{long}:3: the document has 300 characters, more than the limit of 100" in run_cli(
        predict_main, ["--serialization_dir", str(out), "--input_file", str(long), "--max_document_chars", "100",
                       "--output_file", str(tmp_path / "long.jsonl")], capsys)
    assert not (tmp_path / "long.jsonl").exists()  # refused before any work
    assert "--batch_size: expected a positive" in run_cli(evaluate_main, ["--serialization_dir", str(out), "--batch_size", "0"], capsys)


# ------------------------------------------------------------------- crash safety


def checkpoint(path, marker=True):
    path.mkdir()
    (path / "trainer_state.pt").write_text(path.name)
    if marker:
        (path / COMPLETE).touch()


@pytest.mark.parametrize("present, survivor", [
    ({"last": True, "last.tmp": False}, "last"),          # crash while writing the new copy
    ({"last": True, "last.tmp": True}, "last.tmp"),       # crash before the first rename
    ({"last.old": True, "last.tmp": True}, "last.tmp"),   # crash between the two renames
    ({"last": True, "last.old": True}, "last"),           # crash before the old copy was removed
    ({"last.old": True, "last.tmp": False}, "last.old"),  # the new copy incomplete and the old one set aside
])
def test_every_intermediate_state_of_the_checkpoint_swap_settles_to_the_newest_complete_copy(tmp_path, present, survivor):
    for name, complete in present.items():
        checkpoint(tmp_path / name, marker=complete or name != "last.tmp")
    settle_checkpoint(tmp_path / "last")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]
    assert (tmp_path / "last" / "trainer_state.pt").read_text() == survivor


def test_recover_after_a_crash_between_the_renames(tiny_ner_config, tmp_path):
    train(tiny_ner_config, tmp_path / "straight")
    out = tmp_path / "crashed"
    train(tiny_ner_config, out, {"trainer": {"num_epochs": 2}})
    shutil.copytree(out / "last", out / "last.tmp")  # as if the rename of last.tmp had not happened
    (out / "last").rename(out / "last.old")
    train(tiny_ner_config, out, {"trainer": {"num_epochs": 3}}, recover=True)
    assert epochs(out) == epochs(tmp_path / "straight")


def test_an_epoch_interrupted_mid_way_resumes_to_the_same_result(tiny_ner_config, tmp_path, monkeypatch):
    every = {"trainer": {"checkpoint_every_updates": 2}}
    train(tiny_ner_config, tmp_path / "straight", every)
    out = tmp_path / "killed"
    calls = {"n": 0}
    forward = Trainer.__init__.__globals__["HierarchicalModel"].forward

    def dies_in_epoch_3(self, batch):
        calls["n"] += 1
        if calls["n"] == 9:  # step 3 of epoch 3 (3 steps an epoch), after a checkpoint at its step 2 (update 8)
            raise KeyboardInterrupt
        return forward(self, batch)

    monkeypatch.setattr(Trainer.__init__.__globals__["HierarchicalModel"], "forward", dies_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_ner_config, out, every)
    monkeypatch.setattr(Trainer.__init__.__globals__["HierarchicalModel"], "forward", forward)
    state = torch.load(out / "last" / "trainer_state.pt", weights_only=True)
    assert json.loads(state["in_epoch"])["step"] == 2 and state["epoch"] == 2  # mid-way through epoch 3
    train(tiny_ner_config, out, recover=True)
    assert epochs(out) == epochs(tmp_path / "straight")


def test_nothing_to_resume_says_how_to_start_over(tiny_ner_config, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text(tiny_ner_config.read_text())  # a run killed before its first checkpoint
    with pytest.raises(HmtlError, match="nothing to resume: pass --force to start it over"):
        train(tiny_ner_config, out)
    with pytest.raises(HmtlError, match="nothing to resume, so run the same command with --force instead of --recover"):
        train(tiny_ner_config, out, recover=True)
