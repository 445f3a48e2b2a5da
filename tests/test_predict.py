"""The prediction API and predict.py: raw text to spans with character offsets, batching across documents, errors."""
import json
import re

import pytest

from hmtl.cli import predict_main
from hmtl.data.document import Document
from hmtl.errors import HmtlError
from hmtl.predict import Predictor, with_characters

TEXT = "Ada Lovelace lived in London. IBM hired Grace Hopper.\nShe joined Google in Zurich."


@pytest.fixture(scope="module")
def predictor(trained_tiny_ner):
    return Predictor.from_serialization_dir(trained_tiny_ner)


def test_raw_text_gives_spans_with_surface_and_character_offsets(predictor):
    result = predictor.predict(TEXT)
    assert result["text"] == TEXT
    assert result["sentences"][1] == ["IBM", "hired", "Grace", "Hopper", "."]
    entities = result["tiny__ner"]["entities"]
    assert [(e["text"], e["label"]) for e in entities] == [
        ("Ada Lovelace", "PER"), ("London", "LOC"), ("IBM", "ORG"), ("Grace Hopper", "PER"), ("Google", "ORG"), ("Zurich", "LOC")]
    tokens = [t for s in result["sentences"] for t in s]
    for entity in entities:
        assert TEXT[entity["start_char"]:entity["end_char"]] == entity["text"]
        assert " ".join(tokens[entity["start"]:entity["end"]]) == entity["text"]
    assert entities[0] == {"text": "Ada Lovelace", "label": "PER", "start_char": 0, "end_char": 12, "start": 0, "end": 2}


def test_a_list_of_texts_is_batched_and_equals_one_call_per_text(predictor):
    texts = ["Paris is in France.", TEXT, "IBM hired Grace Hopper in Zurich."]
    together = predictor.predict(texts)
    assert [r["doc_id"] for r in together] == ["0", "1", "2"]
    for index, (text, result) in enumerate(zip(texts, together)):
        alone = predictor.predict(text)
        assert result["text"] == text and result["tiny__ner"] == alone["tiny__ner"] and result["sentences"] == alone["sentences"]
    assert [r["doc_id"] for r in predictor.predict(texts, doc_ids=["a", "b", "c"])] == ["a", "b", "c"]


def test_sentences_of_many_documents_share_batches(predictor, monkeypatch):
    calls = []
    original = predictor.model.decode_heads
    monkeypatch.setattr(predictor.model, "decode_heads", lambda batch, shared=None: calls.append(len(batch.units)) or original(batch, shared))
    predictor.predict(["Paris is in France."] * 5 + [TEXT] * 3)
    assert calls == [14]  # 5 + 3 x 3 sentences in one batch of up to 32


def test_pre_tokenized_documents_get_a_joined_text(predictor):
    sentences = [["Ada", "Lovelace", "lived", "in", "London", "."], ["IBM", "hired", "Grace", "Hopper", "."]]
    result = predictor.predict(sentences)
    assert result["text"] == "Ada Lovelace lived in London .\nIBM hired Grace Hopper ."
    grace = result["tiny__ner"]["entities"][-1]
    assert grace["text"] == "Grace Hopper" and result["text"][grace["start_char"]:grace["end_char"]] == "Grace Hopper"
    # a Document keeps its own text and offsets (a raw-text reader's)
    document = Document("d", [["Paris", "is", "in", "France", "."]], text="Paris is in France.",
                        char_offsets=[(0, 5), (6, 8), (9, 11), (12, 18), (18, 19)])
    assert [e["end_char"] for e in predictor.predict(document)["tiny__ner"]["entities"]] == [5, 18]


def test_output_keys_are_namespaces_whichever_heads_are_asked_for(predictor):
    default = predictor.predict(TEXT)
    assert set(default) == {"doc_id", "text", "sentences", "tiny__ner"}
    assert predictor.predict(TEXT, namespaces=["tiny__ner"]) == default == predictor.predict(TEXT, namespaces="all")
    with pytest.raises(HmtlError, match='namespaces: expected a list of namespaces or "all", got \'tiny__ner\''):
        predictor.predict(TEXT, namespaces="tiny__ner")


def test_keep_labels_filters_the_predicted_types(predictor):
    every = predictor.predict(TEXT)["tiny__ner"]["entities"]
    kept = predictor.predict(TEXT, keep_labels=["PER", "ORG"])["tiny__ner"]["entities"]
    assert {e["label"] for e in every} == {"PER", "LOC", "ORG"}
    assert kept == [e for e in every if e["label"] in ("PER", "ORG")]


@pytest.mark.parametrize("texts, message", [
    ([[]], "the text: sentence 0 is empty"),  # one pre-tokenized document, its one sentence empty
    ([["Ada"], []], "the text: sentence 1 is empty"),
    ([["Ada", " "]], "the text: sentence 0 has an empty or blank token"),
    (["fine", []], "text 1 is empty"),
    (["fine", ["Ada", "lived"]], "text 1 is a list but not a pre-tokenized document: its item 0 is not a list of token strings"),
])
def test_bad_pre_tokenized_documents_are_one_line_errors(predictor, texts, message):
    with pytest.raises(HmtlError, match=f"^{re.escape(message)}"):
        predictor.predict(texts)


def test_predict_many_reads_every_item_as_a_document(predictor):
    tokens = [["Ada", "Lovelace", "lived", "in", "London", "."]]
    many = predictor.predict_many([tokens, "IBM hired Grace Hopper."])
    assert [without_id(d) for d in many] == [without_id(predictor.predict(tokens)), without_id(predictor.predict("IBM hired Grace Hopper."))]
    with pytest.raises(HmtlError, match="^text 0 is a list but not a pre-tokenized document"):
        predictor.predict_many(tokens)  # predict reads it as one document; here its item is a sentence, not a document


def without_id(document):
    return {k: v for k, v in document.items() if k != "doc_id"}


def test_nested_exports_get_characters_too():
    document = Document("d", [["Ada", "met", "Alan", "."]], text="Ada met Alan.", char_offsets=[(0, 3), (4, 7), (8, 12), (12, 13)])
    relations = [{"head": {"start": 0, "end": 1, "label": "PER"}, "tail": {"start": 2, "end": 3}, "label": "Meet"}]
    clusters = [[{"start": 0, "end": 1}, {"start": 2, "end": 3}]]
    (relation,) = with_characters(relations, document)
    assert relation == {"head": {"text": "Ada", "label": "PER", "start_char": 0, "end_char": 3, "start": 0, "end": 1},
                        "tail": {"text": "Alan", "start_char": 8, "end_char": 12, "start": 2, "end": 3}, "label": "Meet"}
    assert [m["text"] for m in with_characters(clusters, document)[0]] == ["Ada", "Alan"]


@pytest.mark.parametrize("text, message", [
    ("", "is empty"), ("  \n ", "is empty"), ("a\x00b", "holds NUL bytes: binary data"),
    ("x" * 101, "has 101 characters, more than the limit of 100"), (42, "is a int, not a string")])
def test_bad_texts_are_one_line_errors(trained_tiny_ner, text, message):
    predictor = Predictor.from_serialization_dir(trained_tiny_ner, max_document_chars=100)
    with pytest.raises(HmtlError, match=f"^the text {message}"):
        predictor.predict(text)
    with pytest.raises(HmtlError, match=f"^text 1 {message}"):
        predictor.predict(["fine", text])


@pytest.mark.parametrize("limits", [{"max_document_chars": 0}, {"max_document_chars": -1}, {"batch_size": 0}])
def test_limits_below_one_are_refused_by_the_api_too(predictor, limits):
    ((name, value),) = limits.items()
    with pytest.raises(HmtlError, match=f"^{name}: expected a positive number, got {value}$"):
        Predictor(predictor.model, **limits)


def test_unknown_namespace_and_missing_model_are_named(predictor, tmp_path):
    with pytest.raises(HmtlError, match="unknown namespace.*x__ner.*the model has tiny__ner"):
        predictor.predict("Ada lived.", namespaces=["x__ner"])
    assert set(predictor.predict("Ada lived.", namespaces=["tiny__ner"])) == {"doc_id", "text", "sentences", "tiny__ner"}
    with pytest.raises(HmtlError, match="has no trained model"):
        Predictor.from_serialization_dir(tmp_path / "nowhere")


def test_predict_cli_streams_json_lines_named_by_input_line(trained_tiny_ner, tmp_path, capsys):
    source = tmp_path / "docs.txt"
    source.write_text("Ada Lovelace lived in London.\n\nIBM hired Grace Hopper.\n")
    target = tmp_path / "out.jsonl"
    predict_main(["--serialization_dir", str(trained_tiny_ner), "--input_file", str(source), "--output_file", str(target),
                  "--batch_size", "1"])
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [(line["doc_id"], line["text"]) for line in lines] == [("1", "Ada Lovelace lived in London."), ("3", "IBM hired Grace Hopper.")]
    assert [e["text"] for e in lines[1]["tiny__ner"]["entities"]] == ["IBM", "Grace Hopper"]
    assert f"wrote 2 documents to {target}" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    (b"\xff\xfe\x00binary", "not UTF-8 text"), (b"fine\nbad\x00line\n", ":2: the document holds NUL bytes"),
    (b"\n  \n", "no text (one document per line)"), (b"x" * 300, ":1: the document has 300 characters")])
def test_predict_cli_refuses_bad_files_before_writing(trained_tiny_ner, tmp_path, capsys, content, message):
    source = tmp_path / "docs.txt"
    source.write_bytes(content)
    with pytest.raises(SystemExit) as exit_info:
        predict_main(["--serialization_dir", str(trained_tiny_ner), "--input_file", str(source),
                      "--output_file", str(tmp_path / "out.jsonl"), "--max_document_chars", "200"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("extra, message", [
    (["--namespaces", "x__ner"], "unknown namespace(s) x__ner; the model has tiny__ner"),
    (["--serialization_dir", "nowhere"], "nowhere has no trained model"),
    (["--batch_size", "0"], "--batch_size: expected a positive number, got 0"),
    (["--max_document_chars", "0"], "--max_document_chars: expected a positive number, got 0"),  # was: the default
    (["--max_document_chars", "-5"], "--max_document_chars: expected a positive number, got -5"),
    (["--keep_labels", "PERSON"], "keep_labels: ['PERSON'] names no type the chosen heads predict (tiny__ner: LOC, ORG, PER)")])
def test_predict_cli_names_a_bad_option_in_one_line(trained_tiny_ner, tmp_path, capsys, extra, message):
    source = tmp_path / "docs.txt"
    source.write_text("Ada lived in London.\n")
    with pytest.raises(SystemExit) as exit_info:
        predict_main(["--serialization_dir", str(trained_tiny_ner), "--input_file", str(source), *extra])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1


def test_importing_hmtl_leaves_the_environment_alone():
    import os
    import subprocess
    import sys

    script = ("import os; before = dict(os.environ); import hmtl.predict, hmtl.model, hmtl.training.trainer, hmtl.cli; "
              "changed = {k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k)}; print(sorted(changed))")
    environment = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environment, check=True)
    assert result.stdout.strip() == "[]"


def test_peak_memory_is_none_where_resource_is_missing(monkeypatch):
    import sys

    from hmtl.training.trainer import peak_memory_mb

    assert peak_memory_mb() > 0
    monkeypatch.setitem(sys.modules, "resource", None)  # as on Windows: import resource raises ImportError
    assert peak_memory_mb() is None


def test_info_names_each_label_set_of_a_relation_head():
    from conftest import four_task_config, toy_document

    from hmtl.checks import parse_config
    from hmtl.model import HierarchicalModel
    from hmtl.training.trainer import build_labels

    config = parse_config(four_task_config())
    model = HierarchicalModel(config, build_labels(config, {"toy": [toy_document()]}))
    namespaces = Predictor(model).info()["namespaces"]
    assert namespaces["toy__re"]["labels"] == {"entities": ["O", "LOC", "PER"], "relations": ["O", "Live_In"]}
    assert namespaces["toy__ner"]["labels"][0] == "O" and "B-PER" in namespaces["toy__ner"]["labels"]
