"""Readers for the upper tasks (relations, mentions, coreference): CoNLL04, GUM/OntoGUM and LitBank.

Small fixtures written to tmp_path, plus count checks against each corpus README that run only when
``${HMTL_DATA_DIR:-data}`` holds the corpus."""
import gzip
import json
import os
from collections import Counter
from pathlib import Path

import pytest

from hmtl.data.document import Relation, Span
from hmtl.data.readers.conll04 import Conll04Reader
from hmtl.data.readers.coref_conll import split_cell
from hmtl.data.readers.gum import GumReader
from hmtl.data.readers.litbank import LitBankReader
from hmtl.errors import ConfigError, DataFormatError
from hmtl.registry import READERS

DATA = Path(os.environ.get("HMTL_DATA_DIR", "data"))


def needs(*parts):
    path = DATA.joinpath(*parts)
    return pytest.mark.skipif(not path.exists(), reason=f"{path} not available (set HMTL_DATA_DIR)")


def test_readers_are_registered():
    assert READERS.get("conll04") is Conll04Reader
    assert READERS.get("gum") is GumReader
    assert READERS.get("litbank") is LitBankReader


# ---------------------------------------------------------------- CoNLL04

def write_json_lines_array(path, items):
    # one item per line, so errors can be checked to name the item's line
    path.write_text("[\n" + ",\n".join(json.dumps(item) for item in items) + "\n]\n", encoding="utf-8")
    return path


SENTENCE = {"tokens": ["PERUGIA", ",", "Italy", "(", "AP", ")"],
            "entities": [[0, 1, "Loc"], [2, 3, "Loc"], [4, 5, "Org"]],
            "relations": [[0, 1, 2, 3, "Located_In"], [4, 5, 0, 1, "OrgBased_In"]]}


def test_conll04_one_document_per_sentence(tmp_path):
    path = write_json_lines_array(tmp_path / "dev.json", [SENTENCE, {"tokens": ["Hi"], "entities": [], "relations": []}])
    documents = Conll04Reader("conll04").read(path)
    assert [d.doc_id for d in documents] == ["dev#0", "dev#1"]
    first = documents[0]
    assert first.sentences == [SENTENCE["tokens"]] and first.dataset == "conll04"
    assert first.entities == [Span(0, 1, "Loc"), Span(2, 3, "Loc"), Span(4, 5, "Org")]
    assert first.relations == [Relation(Span(0, 1, "Loc"), Span(2, 3, "Loc"), "Located_In"),
                               Relation(Span(4, 5, "Org"), Span(0, 1, "Loc"), "OrgBased_In")]
    assert documents[1].entities == [] and documents[1].clusters == []


@pytest.mark.parametrize("bad, message", [
    ({"tokens": ["a", "b"], "entities": [[1, 3, "Loc"]], "relations": []}, "outside the sentence"),
    ({"tokens": ["a", "b"], "entities": [[1, 1, "Loc"]], "relations": []}, "empty or outside"),
    ({"tokens": ["a", "b"], "entities": [[0, 1, "Loc"]], "relations": [[0, 1, 1, 2, "Kill"]]}, "not an entity"),
    ({"tokens": ["a", "b"], "entities": [[0, 1]], "relations": []}, "is not \\[start, end_exclusive, type\\]"),
    ({"tokens": [], "entities": [], "relations": []}, "non-empty list"),
])
def test_conll04_errors_name_file_line_and_sentence(tmp_path, bad, message):
    path = write_json_lines_array(tmp_path / "train.json", [SENTENCE, SENTENCE, bad])
    with pytest.raises(DataFormatError, match=message) as error:
        Conll04Reader().read(path)
    assert error.value.path == str(path) and error.value.line == 4  # "[" is line 1, the third item line 4
    assert "sentence 2" in str(error.value)


def test_conll04_not_an_array(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"tokens": ["a"]}\n')
    with pytest.raises(DataFormatError, match="JSON array"):
        Conll04Reader().read(path)
    path.write_text('[{"tokens": ["a"]} {"tokens": ["b"]}]')
    with pytest.raises(DataFormatError, match="expected ','"):
        Conll04Reader().read(path)


CONLL04_COUNTS = {  # README: sentences, tokens, entities by type, relations by type
    "train": (922, 26525, {"Peop": 1087, "Loc": 1219, "Org": 616, "Other": 455},
              {"Live_In": 330, "OrgBased_In": 271, "Located_In": 247, "Work_For": 256, "Kill": 179}),
    "dev": (231, 6993, {"Peop": 283, "Loc": 322, "Org": 170, "Other": 118},
            {"Live_In": 91, "OrgBased_In": 76, "Located_In": 65, "Work_For": 69, "Kill": 42}),
    "test": (288, 8336, {"Peop": 321, "Loc": 427, "Org": 198, "Other": 133},
             {"Live_In": 100, "OrgBased_In": 105, "Located_In": 94, "Work_For": 76, "Kill": 47}),
}


@needs("conll04", "train.json")
@pytest.mark.parametrize("split", list(CONLL04_COUNTS))
def test_conll04_counts_match_readme(split):
    documents = Conll04Reader("conll04").read(DATA / "conll04" / f"{split}.json")
    sentences, tokens, entities, relations = CONLL04_COUNTS[split]
    assert len(documents) == sentences
    assert sum(d.num_tokens for d in documents) == tokens
    assert Counter(e.label for d in documents for e in d.entities) == entities
    assert Counter(r.label for d in documents for r in d.relations) == relations


# ---------------------------------------------------------------- coreference brackets

def test_bracket_cells():
    assert split_cell("_") == []
    assert split_cell("(abstract-7(abstract-3)") == [("open", "abstract-7"), ("single", "abstract-3")]
    assert split_cell("abstract-4)abstract-5)") == [("close", "abstract-4"), ("close", "abstract-5")]
    assert split_cell("(12)|(15") == [("single", "12"), ("open", "15")]
    assert split_cell("1)(1") == [("close", "1"), ("open", "1")]
    for bad in ("((1", "1", "1))", "(1 2)", "()"):
        with pytest.raises(ValueError, match="malformed"):
            split_cell(bad)


# ---------------------------------------------------------------- GUM / OntoGUM

def write(path, text):
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def conll(name, rows):
    lines = [f"# begin document {name}"] + [f"{i}\t{token}\t{cell}" for i, (token, cell) in enumerate(rows)]
    return "\n".join(lines + ["# end document", ""])


def conllu(name, sentences):
    lines = [f"# newdoc id = {name}"]
    for k, sentence in enumerate(sentences):
        lines.append(f"# sent_id = {name}-{k + 1}")
        for i, word in enumerate(sentence, start=1):
            lines.append(f"{i}\t{word}\t_\t_\t_\t_\t0\troot\t_\t_")
            if word == "Byron's":  # a multiword-token line must not count as a word
                lines.insert(-1, f"{i}-{i + 1}\tByron's\t_\t_\t_\t_\t_\t_\t_\t_")
        lines.append("")
    return "\n".join(lines) + "\n"


GUM_ROWS = [  # sentence 1: "Lord Byron was born in Aberdeen ." sentence 2: "He left ."
    ("Lord", "(person-1-Lord_Byron"), ("Byron", "person-1-Lord_Byron)"), ("was", "_"), ("born", "_"),
    ("in", "_"), ("Aberdeen", "(place-2-Aberdeen)(organization-3-Aberdeen_School"), (".", "organization-3)"),
    ("He", "(person-1)"), ("left", "_"), (".", "_"),
]
GUM_SENTENCES = [["Lord", "Byron", "was", "born", "in", "Aberdeen", "."], ["He", "left", "."]]


def gum_files(tmp_path, rows=GUM_ROWS, sentences=GUM_SENTENCES, prefix="gum", suffix=".conll.gz"):
    coref = write(tmp_path / f"{prefix}.dev{suffix}", conll("GUM_bio_byron", rows))
    write(tmp_path / f"gum.dev.conllu{'.gz' if suffix.endswith('.gz') else ''}", conllu("GUM_bio_byron", sentences))
    return coref


def test_gum_typed_mentions_clusters_and_singletons(tmp_path):
    reader = GumReader("gum")
    [document] = reader.read(gum_files(tmp_path))
    assert document.doc_id == "GUM_bio_byron" and document.sentences == GUM_SENTENCES
    # "Aberdeen ." as organization is not in the sentence: it ends at token 6 = "." of sentence 1, fine
    assert document.entities == [Span(0, 2, "person"), Span(5, 6, "place"), Span(5, 7, "organization"),
                                 Span(7, 8, "person")]
    # chains, singletons included, untyped, ordered by first mention (at one start, the longer mention first)
    assert document.clusters == [[Span(0, 2), Span(7, 8)], [Span(5, 7)], [Span(5, 6)]]
    assert reader.crossing_mentions == 0


def test_gum_mention_across_a_sentence_break_stays_in_clusters_only(tmp_path):
    rows = list(GUM_ROWS)
    rows[6] = (".", "_")
    rows[8] = ("left", "organization-3)")  # "Aberdeen . He left" crosses the sentence break
    reader = GumReader("gum")
    [document] = reader.read(gum_files(tmp_path, rows))
    assert Span(5, 9) in [span for cluster in document.clusters for span in cluster]
    assert all(entity.label != "organization" for entity in document.entities)
    assert reader.crossing_mentions == 1
    with pytest.raises(DataFormatError, match="crosses a sentence boundary") as error:
        GumReader(cross_sentence="error").read(tmp_path / "gum.dev.conll.gz")
    assert error.value.line == 7  # the line that opened it ("# begin document" is line 1)
    with pytest.raises(ConfigError):
        GumReader(cross_sentence="merge")


def test_ontogum_numeric_ids_no_singletons_and_quirks(tmp_path):
    rows = [("Lord", "(1"), ("Byron", "1)"), ("was", "(5)(6)"), ("born", "(6)"), ("in", "_"), ("Aberdeen", "(2)"),
            ("", "_"), ("He", "(1)"), ("left", "(5)"), (".", "_")]  # token 6 is blank: the CoNLL-U has "."
    reader = GumReader("ontogum")
    [document] = reader.read(gum_files(tmp_path, rows, prefix="ontogum", suffix=".conll"))
    assert document.entities == []
    # "was" is in chains 5 and 6: kept in 5 (first mention), so 6 is left with "born" alone and dropped like the
    # singleton chain 2
    assert document.clusters == [[Span(0, 2), Span(7, 8)], [Span(2, 3), Span(8, 9)]]
    assert reader.repeated_mentions == 1 and reader.blank_tokens == 1
    kept = GumReader(keep_singletons=True).read(tmp_path / "ontogum.dev.conll")[0]
    assert [Span(5, 6)] in kept.clusters and [Span(3, 4)] in kept.clusters


@pytest.mark.parametrize("rows, line, message", [
    ([("Lord", "(person-1"), ("Byron", "_")], 2, "never closes"),
    ([("Lord", "person-1)"), ("Byron", "_")], 2, "never opened"),
    ([("Lord", "((person-1)"), ("Byron", "_")], 2, "malformed"),
    ([("Lord", "(person)"), ("Byron", "_")], 2, "neither a number"),
    ([("Lord", "(person-1)"), ("Baron", "_")], 3, "tokens differ"),
])
def test_gum_errors_name_file_and_line(tmp_path, rows, line, message):
    path = gum_files(tmp_path, rows, sentences=[["Lord", "Byron"]])
    with pytest.raises(DataFormatError, match=message) as error:
        GumReader().read(path)
    assert error.value.path == str(path) and error.value.line == line


def test_gum_structure_errors(tmp_path):
    path = gum_files(tmp_path)
    write(path, conll("GUM_bio_byron", GUM_ROWS).replace("7\tHe", "9\tHe"))
    with pytest.raises(DataFormatError, match="out of sequence"):
        GumReader().read(path)
    write(path, conll("GUM_other", GUM_ROWS))
    with pytest.raises(DataFormatError, match="not in"):
        GumReader().read(path)
    write(path, conll("GUM_bio_byron", GUM_ROWS).replace("# end document\n", ""))
    with pytest.raises(DataFormatError, match="no '# end document'"):
        GumReader().read(path)
    write(path, conll("GUM_bio_byron", GUM_ROWS) + conll("GUM_bio_byron", [(t, "(7)" if c != "_" else c) for t, c in GUM_ROWS]))
    with pytest.raises(DataFormatError, match="cannot share a file") as error:
        GumReader().read(path)
    assert error.value.line == len(GUM_ROWS) + 3  # the second document's '# begin document'
    with pytest.raises(DataFormatError, match="file not found"):
        GumReader(conllu=str(tmp_path / "missing.conllu")).read(gum_files(tmp_path))


GUM_COUNTS = {  # README: docs, sentences, tokens, GUM mentions, GUM entities, OntoGUM mentions, OntoGUM chains
    "train": (177, 10224, 177410, 49649, 25757, 23320, 5311),
    "dev": (30, 1575, 28119, 7897, 3940, 3818, 857),
    "test": (30, 1464, 28397, 7927, 4319, 3581, 858),
}
GUM_TRAIN_TYPES = {"abstract": 15901, "person": 14459, "place": 4678, "object": 3729, "event": 3688, "time": 2693,
                   "organization": 2152, "substance": 1256, "animal": 658, "plant": 435}


@needs("gum", "gum.train.conll.gz")
@pytest.mark.parametrize("split", list(GUM_COUNTS))
def test_gum_counts_match_readme(split):
    docs, sentences, tokens, mentions, chains, _, _ = GUM_COUNTS[split]
    reader = GumReader("gum")
    documents = reader.read(DATA / "gum" / f"gum.{split}.conll.gz")
    assert len(documents) == docs
    assert sum(len(d.sentences) for d in documents) == sentences
    assert sum(d.num_tokens for d in documents) == tokens
    assert sum(len(c) for d in documents for c in d.clusters) == mentions
    assert sum(len(d.clusters) for d in documents) == chains
    assert sum(len(d.entities) for d in documents) == mentions  # no mention crosses a sentence break
    assert reader.crossing_mentions == 0 and reader.repeated_mentions == 0
    if split == "train":
        assert Counter(e.label for d in documents for e in d.entities) == GUM_TRAIN_TYPES


ONTOGUM_QUIRKS = {  # mentions listed in two chains, one-mention chains as written, blank tokens
    "train": (6, 7, 0), "dev": (1, 2, 1), "test": (0, 1, 0),
}


@needs("gum", "ontogum.train.conll.gz")
@pytest.mark.parametrize("split", list(GUM_COUNTS))
def test_ontogum_counts_match_readme(split):
    docs, _, tokens, _, _, mentions, chains = GUM_COUNTS[split]
    repeated, singletons, blank = ONTOGUM_QUIRKS[split]
    reader = GumReader("ontogum", keep_singletons=True)
    documents = reader.read(DATA / "gum" / f"ontogum.{split}.conll.gz")
    assert len(documents) == docs and sum(d.num_tokens for d in documents) == tokens
    assert (reader.repeated_mentions, reader.blank_tokens) == (repeated, blank)
    # README counts the chains as written: our partition drops the repeats, and no chain becomes empty
    assert sum(len(c) for d in documents for c in d.clusters) == mentions - repeated
    assert sum(len(d.clusters) for d in documents) == chains
    default = GumReader("ontogum").read(DATA / "gum" / f"ontogum.{split}.conll.gz")
    dropped = sum(len(d.clusters) for d in documents) - sum(len(d.clusters) for d in default)
    assert dropped >= singletons and all(len(c) > 1 for d in default for c in d.clusters)
    assert all(d.entities == [] for d in default)


# ---------------------------------------------------------------- LitBank

LIT_TSV = (
    "Lord\tB-PER\tB-PER\tO\tO\t\n"
    "Chancellor\tO\tI-PER\tO\tO\t\n"
    "sat\tO\tO\tO\tO\t\n"
    "in\tO\tO\tO\tO\t\n"
    "Lincoln\tB-FAC\tO\tO\tO\t\n"
    "'s\tI-FAC\tO\tO\tO\t\n"
    "Inn\tI-FAC\tO\tO\tO\t\n"
    ".\tO\tO\tO\tO\t\n"
    "\n"
    "He\tB-PER\tO\tO\tO\t\n"
    "left\tO\tO\tO\tO\t\n"
    ".\tO\tO\tO\tO\t\n"
    "\n"
)


def lit_conll(doc, sentences_cells):
    lines = [f"#begin document ({doc}); part 0"]
    for sentence in sentences_cells:
        for i, (token, cell) in enumerate(sentence):
            lines.append("\t".join([doc, "0", str(i), token] + ["_"] * 8 + [cell]))
        lines.append("")
    return "\n".join(lines + ["#end document", ""])


LIT_CELLS = [
    [("Lord", "(0"), ("Chancellor", "0)"), ("sat", ""), ("in", ""), ("Lincoln", "(1"), ("'s", ""), ("Inn", "1)"),
     (".", "")],
    [("He", "(0)|(2)"), ("left", ""), (".", "")],
]


def litbank_folder(tmp_path, cells=LIT_CELLS, tsv=LIT_TSV):
    root = tmp_path / "litbank"
    (root / "entities" / "tsv").mkdir(parents=True)
    (root / "coref" / "conll").mkdir(parents=True)
    write(root / "entities" / "tsv" / "1_doc_brat.tsv", tsv)
    write(root / "coref" / "conll" / "1_doc_brat.conll.gz", lit_conll("1_doc_brat", cells))
    write(root / "entities" / "tsv" / "2_other_brat.tsv", "Hi\tO\tO\tO\tO\t\n\n")
    write(root / "coref" / "conll" / "2_other_brat.conll", lit_conll("2_other_brat", [[("Hi", "")]]))
    fold = root / "splits" / "litbank_tenfold_splits" / "0"
    fold.mkdir(parents=True)
    write(fold / "train.ids", "1_doc_brat.tsv\n")
    write(fold / "dev.ids", "2_other_brat.tsv\n")
    write(fold / "test.ids", "9_missing_brat.tsv\n")
    return root


def test_litbank_nested_entities_and_clusters(tmp_path):
    root = litbank_folder(tmp_path)
    [document] = LitBankReader("litbank", fold=0, split="train").read(root)
    assert document.doc_id == "1_doc_brat"
    assert document.sentences == [["Lord", "Chancellor", "sat", "in", "Lincoln", "'s", "Inn", "."], ["He", "left", "."]]
    # layer 1: Lord (PER), Lincoln 's Inn (FAC), He (PER); layer 2: Lord Chancellor (PER)
    assert document.entities == [Span(0, 1, "PER"), Span(0, 2, "PER"), Span(4, 7, "FAC"), Span(8, 9, "PER")]
    # "He" carries two ids, "(0)|(2)": it stays in chain 0 (first chain wins), which leaves chain 2 empty, so
    # it disappears; "Lincoln 's Inn" is a singleton chain
    assert document.clusters == [[Span(0, 2), Span(8, 9)], [Span(4, 7)]]
    # the same documents through the .ids path, and every document without a split
    assert LitBankReader().read(root / "splits" / "litbank_tenfold_splits" / "0" / "train.ids")[0].entities == document.entities
    assert [d.doc_id for d in LitBankReader().read(root)] == ["1_doc_brat", "2_other_brat"]
    assert [d.doc_id for d in LitBankReader(split="validation").read(root)] == ["2_other_brat"]
    assert LitBankReader(coref=False, split="train").read(root)[0].clusters == []


def test_litbank_errors(tmp_path):
    root = litbank_folder(tmp_path)
    with pytest.raises(DataFormatError, match="9_missing_brat") as error:
        LitBankReader(split="test").read(root)
    assert error.value.line == 1 and error.value.path.endswith("test.ids")
    with pytest.raises(DataFormatError, match="no split file"):
        LitBankReader(fold=12, split="train").read(root)
    with pytest.raises(ConfigError):
        LitBankReader(split="heldout")


@pytest.mark.parametrize("change, message", [
    (lambda cells: [[("Lord", "(0"), ("Chancellor", "_")] + cells[0][2:], cells[1]], "never closes"),
    (lambda cells: [[("Lady", "(0")] + cells[0][1:], cells[1]], "does not match"),
    (lambda cells: [cells[0] + cells[1]], "ends after|sentence"),
    (lambda cells: [[("Lord", "((0")] + cells[0][1:], cells[1]], "malformed"),
])
def test_litbank_coref_file_errors(tmp_path, change, message):
    root = litbank_folder(tmp_path, cells=change(LIT_CELLS))
    with pytest.raises(DataFormatError, match=message) as error:
        LitBankReader(split="train").read(root)
    assert error.value.path.endswith("1_doc_brat.conll.gz") and error.value.line is not None


def test_litbank_bad_tag(tmp_path):
    root = litbank_folder(tmp_path, tsv=LIT_TSV.replace("B-FAC", "X-FAC"))
    with pytest.raises(DataFormatError, match="invalid tag") as error:
        LitBankReader(split="train").read(root)
    assert error.value.line == 5 and error.value.path.endswith("1_doc_brat.tsv")


LITBANK_COUNTS = {  # README: docs, sentences, tokens, entity mentions, coref mentions, non-singleton chains
    None: (100, 8562, 210532, 13912, 29103, 2164),
    "train": (80, 6755, 169456, 11186, 23218, 1709),
    "dev": (10, 927, 20438, 1463, 3053, 213),
    "test": (10, 880, 20638, 1263, 2832, 242),
}


@needs("litbank", "entities", "tsv")
@pytest.mark.parametrize("split", list(LITBANK_COUNTS))
def test_litbank_counts_match_readme(split):
    docs, sentences, tokens, entities, mentions, non_singleton = LITBANK_COUNTS[split]
    reader = LitBankReader("litbank", fold=0, split=split)
    documents = reader.read(DATA / "litbank")
    assert len(documents) == docs
    assert sum(len(d.sentences) for d in documents) == sentences
    assert sum(d.num_tokens for d in documents) == tokens
    assert sum(len(d.entities) for d in documents) == entities
    assert sum(len(c) for d in documents for c in d.clusters) == mentions
    assert sum(len(c) > 1 for d in documents for c in d.clusters) == non_singleton
    assert reader.repeated_mentions == 0
    if split is None:
        # CoNLL cluster ids: 7,235 tsv chains + 692 COP/APPOS links kept separate
        assert sum(len(d.clusters) for d in documents) == 7927
        assert Counter(e.label for d in documents for e in d.entities) == {
            "PER": 9383, "FAC": 2154, "LOC": 1170, "GPE": 878, "VEH": 197, "ORG": 130}
