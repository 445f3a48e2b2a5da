"""Column (CoNLL-2003 style) and DyGIE readers, the bundled sample corpus, and count checks on the real corpora
(run only when ``${HMTL_DATA_DIR:-data}`` holds them; scripts/data_setup.sh fills it).

Bad-input fixtures are written to tmp_path; every error must name the file and, where there is one, the line."""
import gzip
import importlib.util
import json
import os
import sys
from collections import Counter
from pathlib import Path

import pytest

from hmtl.data.document import Span
from hmtl.data.readers.conll import ColumnReader, DygieReader
from hmtl.data.sample import SAMPLE_DIR
from hmtl.errors import DataFormatError
from hmtl.registry import READERS
from conftest import assert_names

DATA = Path(os.environ.get("HMTL_DATA_DIR", "data"))
ROOT = Path(__file__).resolve().parent.parent


def needs(*parts):
    path = DATA.joinpath(*parts)
    return pytest.mark.skipif(not path.exists(), reason=f"{path} not available (set HMTL_DATA_DIR)")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path



def texts(document, spans):
    tokens = document.tokens
    return [(" ".join(tokens[s.start : s.end]), s.label) for s in spans]


def test_readers_are_registered():
    assert READERS.get("conll2003") is ColumnReader
    assert READERS.get("dygie") is DygieReader


# ---------------------------------------------------------------- column files

CONLL = """-DOCSTART- -X- O O

EU NNP I-NP I-ORG
rejects VBZ I-VP O
German JJ I-NP I-MISC
call NN I-NP O
. . O O

Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER
Smith NNP B-NP B-PER

-DOCSTART- -X- O O

BRUSSELS NNP I-NP I-LOC
1996-08-22 CD I-NP O
"""


def test_conll2003_documents_entities_and_layers(tmp_path):
    documents = ColumnReader("conll03").read(write(tmp_path / "eng.train", CONLL))
    assert [d.doc_id for d in documents] == ["eng.train#0", "eng.train#1"]
    first, second = documents
    assert first.dataset == "conll03"
    assert first.sentences == [["EU", "rejects", "German", "call", "."], ["Peter", "Blackburn", "Smith"]]
    # document-level, end-exclusive offsets; IOB1 "I-PER I-PER B-PER" is two people
    assert first.entities == [Span(0, 1, "ORG"), Span(2, 3, "MISC"), Span(5, 7, "PER"), Span(7, 8, "PER")]
    assert texts(first, first.entities)[2:] == [("Peter Blackburn", "PER"), ("Smith", "PER")]
    assert first.token_tags["pos"] == [["NNP", "VBZ", "JJ", "NN", "."], ["NNP", "NNP", "NNP"]]
    assert first.token_tags["chunk"][1] == ["I-NP", "I-NP", "B-NP"]
    assert second.entities == [Span(0, 1, "LOC")]


def test_conll_gzip_and_tabs_and_bioes(tmp_path):
    path = tmp_path / "corpus.tsv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("New\tB-LOC\nYork City\tE-LOC\nis\tO\nbig\tS-MISC\n\nOK\tO\n")
    (document,) = ColumnReader().read(path)
    assert document.doc_id == "corpus.tsv#0"
    assert document.sentences == [["New", "York City", "is", "big"], ["OK"]]  # tab-separated: a token may hold a space
    assert document.entities == [Span(0, 2, "LOC"), Span(3, 4, "MISC")]
    assert document.token_tags == {}  # two columns: no POS or chunk layer


def test_conll_only_ascii_spaces_separate_columns(tmp_path):
    path = write(tmp_path / "x.conll", "New\u00a0York B-LOC  \r\nis O\n \n")
    (document,) = ColumnReader().read(path)
    assert document.sentences == [["New\u00a0York", "is"]]
    assert document.entities == [Span(0, 1, "LOC")]


def test_conll_without_docstart_is_grouped(tmp_path):
    text = "".join(f"w{i}\t{'B-Disease' if i % 2 else 'O'}\n\n" for i in range(5))
    path = write(tmp_path / "train.tsv", text)
    documents = ColumnReader(sentences_per_document=2).read(path)
    assert [len(d.sentences) for d in documents] == [2, 2, 1]
    assert documents[0].entities == [Span(1, 2, "Disease")]
    assert len(ColumnReader().read(path)) == 1  # default: 100 sentences per document


def test_conll_tag_column_and_extra_columns(tmp_path):
    path = write(tmp_path / "x.conll", "Ada B-PER NNP\nLovelace I-PER NNP\n\n")
    (document,) = ColumnReader(tag_column=1, extra_columns={"pos": 2}).read(path)
    assert document.entities == [Span(0, 2, "PER")]
    assert document.token_tags == {"pos": [["NNP", "NNP"]]}
    (document,) = ColumnReader(tag_column=1, extra_columns={}).read(path)
    assert document.token_tags == {}


def test_conll_wrong_number_of_columns(tmp_path):
    path = write(tmp_path / "bad.conll", CONLL.replace("call NN I-NP O", "call NN O"))
    with pytest.raises(DataFormatError) as error:
        ColumnReader().read(path)
    assert_names(error.value, path, 6)
    assert "expected 4 columns" in str(error.value)


@pytest.mark.parametrize("tag, message", [
    ("X-PER", "'X-PER'"),
    ("B-corporation,B-product", "one tag per token"),  # two tags in one column, not a type
])
def test_conll_invalid_tag(tmp_path, tag, message):
    path = write(tmp_path / "bad.conll", CONLL.replace("Smith NNP B-NP B-PER", f"Smith NNP B-NP {tag}"))
    with pytest.raises(DataFormatError) as error:
        ColumnReader().read(path)
    assert_names(error.value, path, 11)
    assert message in str(error.value)


def test_conll_tag_column_out_of_range(tmp_path):
    path = write(tmp_path / "bad.conll", "Ada B-PER\n")
    with pytest.raises(DataFormatError) as error:
        ColumnReader(tag_column=3).read(path)
    assert_names(error.value, path, 1)


@pytest.mark.parametrize("reader", [ColumnReader, DygieReader])
def test_empty_corpus_file(tmp_path, reader):
    path = write(tmp_path / "empty.txt", "\n\n")
    with pytest.raises(DataFormatError) as error:
        reader().read(path)
    assert_names(error.value, path, None)  # no line to point at: the file is named
    assert "no documents" in str(error.value)


@pytest.mark.parametrize("reader", [ColumnReader, DygieReader])
def test_missing_file(tmp_path, reader):
    path = tmp_path / "missing.conll"
    with pytest.raises(DataFormatError) as error:
        reader().read(path)
    assert_names(error.value, path, None)
    assert "not found" in str(error.value)


# ---------------------------------------------------------------- DyGIE JSON lines

RECORD = {
    "doc_key": "X96-1001",
    "sentences": [["We", "present", "a", "parser", "."], ["It", "uses", "neural", "networks", "."]],
    "ner": [[[3, 3, "Method"]], [[7, 8, "Method"]]],
    "relations": [[], [[5, 5, 7, 8, "USED-FOR"]]],
    "clusters": [[[2, 3], [5, 5], [2, 3]]],
}


def dygie_file(tmp_path, *records) -> Path:
    return write(tmp_path / "train.json", "".join(
        (r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))


def test_dygie_inclusive_offsets_become_exclusive(tmp_path):
    record = dict(RECORD, relations=[[], []])
    (document,) = DygieReader("scierc").read(dygie_file(tmp_path, record))
    assert document.doc_id == "X96-1001"
    assert document.dataset == "scierc"
    assert document.entities == [Span(3, 4, "Method"), Span(7, 9, "Method")]
    assert texts(document, document.entities) == [("parser", "Method"), ("neural networks", "Method")]
    assert document.clusters == [[Span(2, 4), Span(5, 6)]]  # the repeated mention is kept once


def test_dygie_relations_point_at_entities(tmp_path):
    record = dict(RECORD, ner=[[[3, 3, "Method"]], [[5, 5, "Generic"], [7, 8, "Method"]]])
    (document,) = DygieReader().read(dygie_file(tmp_path, record))
    (relation,) = document.relations
    assert (relation.head, relation.tail, relation.label) == (Span(5, 6, "Generic"), Span(7, 9, "Method"), "USED-FOR")


def test_dygie_optional_layers(tmp_path):
    (document,) = DygieReader().read(dygie_file(tmp_path, {"sentences": [["a", "b"]]}))
    assert document.doc_id == "train.json#1"
    assert (document.entities, document.relations, document.clusters) == ([], [], [])


def test_dygie_span_outside_its_sentence(tmp_path):
    bad = dict(RECORD, ner=[[[3, 5, "Method"]], []], relations=[[], []])  # crosses into sentence 1
    path = dygie_file(tmp_path, dict(RECORD, ner=[[[3, 3, "M"]], []], relations=[[], []]), bad)
    with pytest.raises(DataFormatError) as error:
        DygieReader().read(path)
    assert_names(error.value, path, 2)
    assert "outside its sentence" in str(error.value)


def test_dygie_relation_outside_its_sentence(tmp_path):
    bad = dict(RECORD, relations=[[[3, 3, 7, 8, "USED-FOR"]], []])  # tail lies in sentence 1
    path = dygie_file(tmp_path, bad)
    with pytest.raises(DataFormatError) as error:
        DygieReader().read(path)
    assert_names(error.value, path, 1)
    assert "outside its sentence" in str(error.value)


def test_dygie_relation_argument_must_be_an_entity(tmp_path):
    path = dygie_file(tmp_path, RECORD)  # [5, 5] "It" is not in ner
    with pytest.raises(DataFormatError) as error:
        DygieReader().read(path)
    assert_names(error.value, path, 1)
    assert "not an entity" in str(error.value)


def test_dygie_cluster_outside_document(tmp_path):
    path = dygie_file(tmp_path, dict(RECORD, relations=[[], []], clusters=[[[2, 3], [9, 10]]]))
    with pytest.raises(DataFormatError) as error:
        DygieReader().read(path)
    assert_names(error.value, path, 1)
    assert "outside the document" in str(error.value)


def test_dygie_bad_json(tmp_path):
    path = dygie_file(tmp_path, dict(RECORD, relations=[[], []]), "", '{"sentences": [["a"]],')
    with pytest.raises(DataFormatError) as error:
        DygieReader().read(path)
    assert_names(error.value, path, 3)
    assert "JSON" in str(error.value)


@pytest.mark.parametrize("record, message", [
    ({"doc_key": "a"}, "'sentences'"),
    ([["a"]], "JSON object"),
    ({"sentences": "a b"}, "lists of token strings"),
    ({"sentences": [["a"]], "ner": [[], []]}, "one list per sentence"),
    ({"sentences": [["a"]], "ner": [[[0, 0]]]}, "[start, end, label]"),
])
def test_dygie_malformed_records(tmp_path, record, message):
    path = dygie_file(tmp_path, record)
    with pytest.raises(DataFormatError) as error:
        DygieReader().read(path)
    assert_names(error.value, path, 1)
    assert message in str(error.value)


# ---------------------------------------------------------------- the bundled sample corpus

SPLITS = {"train": 24, "dev": 6, "test": 6}
SIGNATURES = {"Work_For": ("PER", "ORG"), "Live_In": ("PER", "LOC"), "Located_In": ("LOC", "LOC"),
              "OrgBased_In": ("ORG", "LOC")}


@pytest.mark.parametrize("split", SPLITS)
def test_sample_corpus_formats_agree(split):
    conll = ColumnReader("sample").read(SAMPLE_DIR / f"sample.{split}.conll")
    dygie = DygieReader("sample").read(SAMPLE_DIR / f"sample.{split}.jsonl")
    assert len(conll) == len(dygie) == SPLITS[split]
    for from_conll, from_json in zip(conll, dygie):
        assert from_conll.sentences == from_json.sentences
        assert from_conll.entities == from_json.entities
        assert 2 <= len(from_json.sentences) <= 4
        assert set(from_conll.token_tags) == {"pos", "chunk"}
        assert {span.label for span in from_json.entities} <= {"PER", "ORG", "LOC", "MISC"}
        for relation in from_json.relations:
            assert (relation.head.label, relation.tail.label) == SIGNATURES[relation.label]
            assert from_json.sentence_of(relation.head.start) == from_json.sentence_of(relation.tail.start)


def test_sample_corpus_has_pronoun_coreference():
    pronouns = {"he", "she", "it", "they", "him", "her", "his", "its", "their", "them"}
    documents = [d for split in SPLITS for d in DygieReader().read(SAMPLE_DIR / f"sample.{split}.jsonl")]
    linked = Counter()
    for document in documents:
        assert document.clusters, document.doc_id
        for cluster in document.clusters:
            assert len(cluster) >= 2
            for span in cluster:
                words = document.tokens[span.start : span.end]
                if len(words) == 1 and words[0].lower() in pronouns:
                    linked[words[0].lower()] += 1
    assert sum(linked.values()) > 50
    relations = Counter(r.label for d in documents for r in d.relations)
    assert set(relations) == set(SIGNATURES)


def test_sample_corpus_files_are_up_to_date(monkeypatch):
    script = ROOT / "scripts" / "make_sample_corpus.py"
    if not script.exists():
        pytest.skip("generator script not in this checkout (installed package)")
    spec = importlib.util.spec_from_file_location("make_sample_corpus", script)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "make_sample_corpus", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    assert module.main(["--out", str(SAMPLE_DIR), "--check"]) == 0, "rerun scripts/make_sample_corpus.py"


# ---------------------------------------------------------------- real corpora (counts from their READMEs)

def corpus_counts(documents):
    return (len(documents), sum(len(d.sentences) for d in documents), sum(d.num_tokens for d in documents),
            Counter(span.label for d in documents for span in d.entities))


@needs("conll2003", "eng.train.gz")
@pytest.mark.parametrize("name, expected", [
    ("eng.train.gz", (946, 14041, 203621, {"PER": 6600, "LOC": 7140, "ORG": 6321, "MISC": 3438})),
    ("eng.testa", (216, 3250, 51362, {"PER": 1842, "LOC": 1837, "ORG": 1341, "MISC": 922})),
    ("eng.testb", (231, 3453, 46435, {"PER": 1617, "LOC": 1668, "ORG": 1661, "MISC": 702})),
])
def test_conll2003_counts(name, expected):
    documents = ColumnReader("conll03").read(DATA / "conll2003" / name)
    n_docs, n_sentences, n_tokens, labels = corpus_counts(documents)
    assert (n_docs, n_sentences, n_tokens, dict(labels)) == expected
    assert set(documents[0].token_tags) == {"pos", "chunk"}


@needs("ncbi-disease", "train.tsv")
@pytest.mark.parametrize("name, expected", [
    ("train.tsv", (5424, 135701, 5134)), ("devel.tsv", (923, 23969, 787)), ("test.tsv", (940, 24497, 960)),
])
def test_ncbi_disease_counts(name, expected):
    documents = ColumnReader("ncbi").read(DATA / "ncbi-disease" / name)
    _, n_sentences, n_tokens, labels = corpus_counts(documents)
    assert (n_sentences, n_tokens, labels["Disease"]) == expected
    assert set(labels) == {"Disease"}
    assert all(len(d.sentences) <= 100 for d in documents)


@needs("scierc", "train.json")
@pytest.mark.parametrize("name, expected", [
    # the README counts 1,899 cluster mentions in train: document H05-1117 lists mention [106, 106] twice in one
    # cluster, and the reader keeps it once
    ("train.json", (350, 1861, 45412, 5598, 3219, 720, 1898)),
    ("dev.json", (50, 275, 6521, 811, 455, 100, 272)),
    ("test.json", (100, 551, 13401, 1685, 974, 195, 515)),
])
def test_scierc_counts(name, expected):
    documents = DygieReader("scierc").read(DATA / "scierc" / name)
    n_docs, n_sentences, n_tokens, labels = corpus_counts(documents)
    counts = (n_docs, n_sentences, n_tokens, sum(labels.values()), sum(len(d.relations) for d in documents),
              sum(len(d.clusters) for d in documents), sum(len(c) for d in documents for c in d.clusters))
    assert counts == expected
    if name == "train.json":
        assert labels == {"Task": 894, "Method": 1445, "Metric": 231, "Material": 542,
                          "OtherScientificTerm": 1536, "Generic": 950}
