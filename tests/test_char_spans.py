"""The spaCy-based tokenizer with character offsets, aligning character spans to tokens, and the ``jsonl_spans``
reader (JNLPBA's JSON lines). Real-corpus counts run when ``${HMTL_DATA_DIR:-data}/jnlpba`` is there."""
import json
import os
from pathlib import Path

import pytest

from hmtl.data.readers.char_spans import JsonlSpanReader
from hmtl.data.tokenization import AlignmentError, align, document_from_text, tokenize
from hmtl.errors import ConfigError, DataFormatError

DATA = Path(os.environ.get("HMTL_DATA_DIR", "data"))


def test_tokenizer_splits_hyphens_keeps_abbreviations_and_ends_sentences_at_line_breaks():
    text = "Cisplatin-induced nephrotoxicity in the U.S. was studied\nDr. Smith agreed. It works!"
    tokenized = tokenize(text)
    assert tokenized.sentences == [
        ["Cisplatin", "-", "induced", "nephrotoxicity", "in", "the", "U.S.", "was", "studied"],
        ["Dr.", "Smith", "agreed", "."], ["It", "works", "!"]]
    for sentence, offsets in zip(tokenized.sentences, tokenized.offsets):
        assert [text[s:e] for s, e in offsets] == sentence


def test_alignment_splits_a_token_at_an_annotation_boundary_and_joins_crossed_sentences():
    text = "IL-2R binds. Here it is. Gone"
    spans = [(0, 4), (13, 29)]  # "IL-2" inside the token "IL-2R"; a span across two sentences
    tokenized, token_spans, counts = align(tokenize(text), spans)
    assert tokenized.sentences[0][:2] == ["IL-2", "R"]
    assert counts.split_tokens == 1 and counts.merged_sentences == 1
    assert len(tokenized.sentences) == 2
    flat = [o for offsets in tokenized.offsets for o in offsets]
    for (start, end), (first, last) in zip(spans, token_spans):
        assert (flat[first][0], flat[last - 1][1]) == (start, end)
    with pytest.raises(AlignmentError, match="cuts the token 'IL-2R'"):
        align(tokenize(text), spans, split_tokens=False)


def test_document_from_text_keeps_character_offsets():
    text = "  Ada Lovelace met Charles Babbage in London."
    document, _ = document_from_text("d", text, [(2, 14, "PER"), (19, 34, "PER"), (38, 44, "LOC")])
    assert document.text == text
    assert [(s.start, s.end, s.label) for s in document.entities] == [(0, 2, "PER"), (3, 5, "PER"), (6, 7, "LOC")]
    for span in document.entities:
        start, end = document.char_offsets[span.start][0], document.char_offsets[span.end - 1][1]
        assert text[start:end] in ("Ada Lovelace", "Charles Babbage", "London")
    with pytest.raises(AlignmentError, match="only whitespace"):
        document_from_text("d", text, [(0, 2, "X")])


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


GOOD = {"doc_id": "p1", "text": "NFAT-dependent induction of Egr3 in T cells.",
        "entities": [[0, 4, "protein", "NFAT"], [28, 32, "DNA", "Egr3"], [36, 43, "cell_type", "T cells"]]}


def test_jsonl_spans_reader(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [GOOD, "", {"text": "No entities here."}])
    first, second = JsonlSpanReader(dataset="j").read(path)
    assert first.doc_id == "p1" and first.dataset == "j" and second.doc_id == "c.jsonl#3"
    assert first.sentences == [["NFAT", "-", "dependent", "induction", "of", "Egr3", "in", "T", "cells", "."]]
    assert [(s.start, s.end, s.label) for s in first.entities] == [(0, 1, "protein"), (5, 6, "DNA"), (7, 9, "cell_type")]
    assert second.entities == []


@pytest.mark.parametrize("record, message", [
    ("{oops", "expected one JSON object per line"),
    ({"entities": []}, 'expected an object with a "text" string'),
    ({**GOOD, "entities": [[0, 4]]}, "expected entities as [start, end, type]"),
    ({**GOOD, "entities": [[40, 99, "protein"]]}, "is outside the text"),
    ({**GOOD, "entities": [[0, 4, "protein", "NFAT-"]]}, "the text at [0, 4) is 'NFAT', not 'NFAT-'"),
    ({**GOOD, "entities": [[4, 5, "protein"]], "text": "NFAT  x"}, "covers only whitespace"),
])
def test_jsonl_spans_errors_name_file_and_line(tmp_path, record, message):
    path = write_jsonl(tmp_path / "bad.jsonl", [GOOD, record])
    with pytest.raises(DataFormatError) as error:
        JsonlSpanReader().read(path)
    assert str(error.value).startswith(f"{path}:2: ") and message in str(error.value)


def test_a_span_cutting_a_token_is_an_error_when_tokens_may_not_be_split(tmp_path):
    path = write_jsonl(tmp_path / "cut.jsonl", [{"text": "IL-2R binds.", "entities": [[0, 4, "protein", "IL-2"]]}])
    assert JsonlSpanReader().read(path)[0].sentences[0][:2] == ["IL-2", "R"]
    with pytest.raises(DataFormatError, match=r"cut.jsonl:1: .*cuts the token 'IL-2R'"):
        JsonlSpanReader(split_tokens=False).read(path)


def test_unknown_tokenizer_language_is_an_option_error(tmp_path):
    from hmtl.data.loading import make_reader

    with pytest.raises(ConfigError, match="data.j.reader_options: language: spaCy has no tokenizer for 'qq'"):
        make_reader("j", "jsonl_spans", {"language": "qq"})


@pytest.mark.skipif(not (DATA / "jnlpba" / "test.jsonl").exists(), reason="JNLPBA not in HMTL_DATA_DIR")
def test_real_jnlpba_test_split_keeps_every_mention():
    documents = JsonlSpanReader().read(DATA / "jnlpba" / "test.jsonl")
    assert len(documents) == 404
    assert sum(len(d.entities) for d in documents) == 8662  # the README's count: no mention lost in alignment
    for document in documents[:50]:
        for span in document.entities:
            assert document.char_offsets[span.start][0] < document.char_offsets[span.end - 1][1]


def test_a_tokenizer_whose_module_fails_to_import_says_why_instead_of_unknown_language(monkeypatch):
    import spacy

    from hmtl.data.tokenization import pipeline

    def broken_blank(language):
        try:
            raise ImportError("No module named 'blis'", name="blis")
        except ImportError as error:
            raise ImportError(f"[E048] Can't import language {language} from spacy.lang") from error

    monkeypatch.setattr(spacy, "blank", broken_blank)
    with pytest.raises(ValueError, match=r"^language: spaCy's 'en' tokenizer failed to import \(No module named 'blis'\)"):
        pipeline.__wrapped__("en")  # not the cached pipeline an earlier test may have made
