"""BRAT and PubTator readers (``hmtl.data.readers.standoff``) on small hand-written fixtures in tmp_path.

Every error must name the file and the line of the offending annotation."""
import logging
from pathlib import Path

import pytest

import hmtl.data.readers  # noqa: F401  (registers the readers)
from hmtl.data.document import Event, Relation, Span
from hmtl.data.readers.standoff import BratReader, PubTatorReader
from hmtl.errors import ConfigError, DataFormatError
from hmtl.registry import READERS
from conftest import assert_names


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", newline="")
    return path



def surfaces(document, spans):
    """Each span's text in ``document.text`` through the character offsets of its first and last token."""
    offsets = document.char_offsets
    return [(document.text[offsets[s.start][0] : offsets[s.end - 1][1]], s.label) for s in spans]


def token_texts(document, spans):
    tokens = document.tokens
    return [(" ".join(tokens[s.start : s.end]), s.label) for s in spans]


# ---------------------------------------------------------------- BRAT

A_TXT = "Aspirin reduces the risk of heart attack in adults.\nIt is cheap.\n"
#        0      7 8     15  19   24 27    33     40 43     50
A_ANN = (
    "T1\tDrug 0 7\tAspirin\n"
    "T2\tDisease 28 40\theart attack\n"
    "A1\tNegated T2\n"
    "T3\tPerson 44 50\tadults\n"
    "R1\tTreats Arg1:T1 Arg2:T2\t\n"
    "#1\tAnnotatorNotes T1\ta common drug\n"
    "T4\tConcept 20 24;34 40\trisk attack\n"
)
B_TXT = "Cisplatin-induced nephrotoxicity in rats.\nWe studied acute renal failure caused by cisplatin."
B_ANN = (
    "T1\tChemical 0 9\tCisplatin\n"
    "T2\tDisease 18 32\tnephrotoxicity\n"
    "T3\tDisease 53 72\tacute renal failure\n"
    "T4\tChemical 83 92\tcisplatin\n"
    "R1\tCauses Arg1:T4 Arg2:T3\n"
    "E1\tCause:T4 Theme:T3\n"
    "T5\tDisease 53 58;65 72\tacute failure\n"
    "R2\tCauses Arg1:T1 Arg2:T5\n"
)


def brat_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "brat"
    folder.mkdir()
    for name, text, ann in [("b", B_TXT, B_ANN), ("a", A_TXT, A_ANN)]:
        write(folder / f"{name}.txt", text)
        write(folder / f"{name}.ann", ann)
    return folder


def test_brat_folder_join_mode(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="hmtl.data.readers.standoff"):
        documents = BratReader("med").read(brat_folder(tmp_path))
    assert [d.doc_id for d in documents] == ["a", "b"]  # sorted by name, ids are file stems
    a, b = documents
    assert a.dataset == b.dataset == "med"
    assert a.text == A_TXT
    assert a.sentences == [["Aspirin", "reduces", "the", "risk", "of", "heart", "attack", "in", "adults", "."],
                           ["It", "is", "cheap", "."]]
    assert a.char_offsets[:3] == [(0, 7), (8, 15), (16, 19)]
    assert a.char_offsets[-4:] == [(52, 54), (55, 57), (58, 63), (63, 64)]
    # the discontinuous T4 "risk ... attack" becomes one span from "risk" to "attack"
    assert a.entities == [Span(0, 1, "Drug"), Span(5, 7, "Disease"), Span(8, 9, "Person"), Span(3, 7, "Concept")]
    assert surfaces(a, a.entities) == [("Aspirin", "Drug"), ("heart attack", "Disease"), ("adults", "Person"),
                                       ("risk of heart attack", "Concept")]
    assert a.relations == [Relation(Span(0, 1, "Drug"), Span(5, 7, "Disease"), "Treats")]
    assert a.attributes["brat_ids"] == {"T1": 0, "T2": 1, "T3": 2, "T4": 3}

    assert token_texts(b, b.entities) == [("Cisplatin", "Chemical"),
                                          ("nephrotoxicity", "Disease"), ("acute renal failure", "Disease"),
                                          ("cisplatin", "Chemical")]
    assert surfaces(b, b.entities) == token_texts(b, b.entities)
    # T5 joined is T3's span and type again: one entity, both ids point at it
    assert b.attributes["brat_ids"] == {"T1": 0, "T2": 1, "T3": 2, "T4": 3, "T5": 2}
    failure, cisplatin = Span(9, 12, "Disease"), Span(14, 15, "Chemical")
    assert b.entities[2:] == [failure, cisplatin]
    assert b.relations == [Relation(cisplatin, failure, "Causes"), Relation(Span(0, 1, "Chemical"), failure, "Causes")]

    messages = [record.getMessage() for record in caplog.records]
    assert any("a.ann: skipped 2 annotation lines" in m and "# 1, A 1" in m for m in messages)
    assert not any("b.ann: skipped" in m for m in messages)  # its E line is read: an event
    assert b.events == [Event(Span(14, 15, "Cause"), (Span(9, 12, "Theme"),))]
    assert any("2 discontinuous spans (discontinuous='join')" in m for m in messages)


def test_brat_skip_mode_drops_discontinuous_spans_and_their_relations(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="hmtl.data.readers.standoff"):
        a, b = BratReader(discontinuous="skip").read(brat_folder(tmp_path))
    assert a.entities == [Span(0, 1, "Drug"), Span(5, 7, "Disease"), Span(8, 9, "Person")]
    assert "T4" not in a.attributes["brat_ids"]
    assert b.relations == [Relation(Span(14, 15, "Chemical"), Span(9, 12, "Disease"), "Causes")]  # R2 used T5
    assert any("2 discontinuous spans (discontinuous='skip')" in r.getMessage() and "1 relations" in r.getMessage()
               for r in caplog.records)


def test_brat_error_mode_names_the_discontinuous_span(tmp_path):
    folder = brat_folder(tmp_path)
    with pytest.raises(DataFormatError) as error:
        BratReader(discontinuous="error").read(folder)
    assert_names(error.value, folder / "a.ann", 7)
    assert "T4" in str(error.value) and "discontinuous" in str(error.value)


def test_brat_unknown_discontinuous_mode():
    with pytest.raises(ConfigError, match="discontinuous"):
        BratReader(discontinuous="merge")


def test_brat_single_file_paths_and_missing_ann(tmp_path):
    folder = brat_folder(tmp_path)
    write(folder / "c.txt", "No annotations here.")
    (from_txt,) = BratReader().read(folder / "b.txt")
    (from_ann,) = BratReader().read(folder / "b.ann")
    assert from_txt.doc_id == from_ann.doc_id == "b"
    assert from_txt.entities == from_ann.entities and len(from_txt.entities) == 4
    (plain,) = BratReader().read(folder / "c.txt")
    assert (plain.sentences, plain.entities, plain.relations) == ([["No", "annotations", "here", "."]], [], [])
    assert [d.doc_id for d in BratReader().read(folder)] == ["a", "b", "c"]


def test_brat_offsets_count_carriage_returns(tmp_path):
    write(tmp_path / "crlf.txt", "Hello world.\r\nBye now.\r\n")
    write(tmp_path / "crlf.ann", "T1\tGreeting 14 17\tBye\r\n")
    (document,) = BratReader().read(tmp_path / "crlf.txt")
    assert document.sentences == [["Hello", "world", "."], ["Bye", "now", "."]]
    assert document.entities == [Span(3, 4, "Greeting")]
    assert document.char_offsets[3] == (14, 17)


def test_brat_split_tokens(tmp_path):
    write(tmp_path / "a.txt", A_TXT)
    ann = write(tmp_path / "a.ann", "T1\tDrug 0 7\tAspirin\nT2\tPart 0 5\tAspir\n")
    (document,) = BratReader().read(ann)
    assert document.tokens[:3] == ["Aspir", "in", "reduces"]
    assert document.entities == [Span(0, 2, "Drug"), Span(0, 1, "Part")]
    with pytest.raises(DataFormatError) as error:
        BratReader(split_tokens=False).read(ann)
    assert_names(error.value, ann, 2)  # the T line whose boundary cuts "Aspirin", not the document's first line
    assert "'Aspirin'" in str(error.value)


def test_brat_orphan_ann_in_folder(tmp_path):
    folder = brat_folder(tmp_path)
    orphan = write(folder / "z.ann", "T1\tX 0 1\tA\n")
    with pytest.raises(DataFormatError) as error:
        BratReader().read(folder)
    assert_names(error.value, orphan, None)
    assert "z.txt" in str(error.value)


BRAT_ERRORS = [
    ("T3\tDisease 28\theart attack", "expected offsets"),
    ("T3\tDisease 28 40", "expected 'T<id>"),
    ("T3\tDisease\theart attack", "expected 'T<id>"),
    ("T3\tDisease 28 4x\theart attack", "integers"),
    ("T3\tDisease 28.0 40\theart attack", "integers"),
    ("T3\tDisease 28 400\theart attack", "outside the text"),
    ("T3\tDisease -1 4\tAspi", "outside the text"),
    ("T3\tDisease 28 40\theart attacks", "'heart attack', not 'heart attacks'"),
    ("T3\tConcept 20 24;34 40\trisk heart", "fragment 2 [34, 40) is 'attack' in the text"),
    ("T3\tConcept 20 24;34 40\triskattack", "space before fragment 2"),
    ("T3\tConcept 20 24;34 40\trisk attack!", "longer than"),
    ("T3\tSpace 7 8\t ", "only whitespace"),
    ("T1\tDisease 28 40\theart attack", "'T1' is used twice"),
    ("R1\tTreats Arg1:T1", "expected 'R<id>"),
    ("R1\tTreats T1 T2", "expected 'R<id>"),
    ("R1\tTreats Arg1:T1 Arg3:T2", "expected 'R<id>"),
    ("R1\tTreats Arg1:T1 Arg2:T9", "Arg2 'T9' is not the id of a T"),
    ("R1\tTreats Arg1:E1 Arg2:T2", "Arg1 'E1' is not the id of a T"),
    ("X1\tsomething", "unknown annotation line"),
]


@pytest.mark.parametrize("bad_line, message", BRAT_ERRORS)
def test_brat_errors_name_ann_file_and_line(tmp_path, bad_line, message):
    write(tmp_path / "a.txt", A_TXT)
    ann = write(tmp_path / "a.ann", f"T1\tDrug 0 7\tAspirin\nT2\tDisease 28 40\theart attack\n\n{bad_line}\n"
                                    "T5\tPerson 44 50\tadults\n")
    with pytest.raises(DataFormatError) as error:
        BratReader().read(tmp_path)
    assert_names(error.value, ann, 4)
    assert message in str(error.value)


def test_brat_relation_may_come_before_its_entities(tmp_path):
    write(tmp_path / "a.txt", A_TXT)
    write(tmp_path / "a.ann", "R1\tTreats Arg1:T1 Arg2:T2\nT2\tDisease 28 40\theart attack\nT1\tDrug 0 7\tAspirin\n")
    (document,) = BratReader().read(tmp_path)
    assert document.relations == [Relation(Span(0, 1, "Drug"), Span(5, 7, "Disease"), "Treats")]


def test_brat_via_registry_sets_dataset(tmp_path):
    documents = READERS.get("brat")(dataset="x").read(brat_folder(tmp_path))
    assert [d.dataset for d in documents] == ["x", "x"]
    assert READERS.get("brat") is BratReader and READERS.get("pubtator") is PubTatorReader


def test_brat_missing_path(tmp_path):
    with pytest.raises(DataFormatError) as error:
        BratReader().read(tmp_path / "nothing.txt")
    assert_names(error.value, tmp_path / "nothing.txt", None)
    with pytest.raises(DataFormatError) as error:
        BratReader().read(write(tmp_path / "corpus.json", "{}"))
    assert "expected a folder" in str(error.value)


# ---------------------------------------------------------------- PubTator

TITLE_1 = "Cisplatin-induced nephrotoxicity in rats."
ABSTRACT_1 = "We studied acute renal failure caused by cisplatin. Famotidine did not help."
TITLE_2 = "BRCA1 and breast cancer"
ABSTRACT_2 = "Mutations in BRCA1 cause breast and ovarian cancer."
PUBTATOR = (
    f"1001|t|{TITLE_1}\n"
    f"1001|a|{ABSTRACT_1}\n"
    "1001\t0\t9\tCisplatin\tChemical\tD002945\n"
    "1001\t18\t32\tnephrotoxicity\tDisease\tD007674\n"
    "1001\t53\t72\tacute renal failure\tDisease\tD058186\n"
    "1001\t83\t92\tcisplatin\tChemical\tD002945\n"
    "1001\t94\t104\tFamotidine\tChemical\t-1\n"
    "1001\tCID\tD002945\tD058186\n"
    "\n"
    f"1002|t|{TITLE_2}\n"
    f"1002|a|{ABSTRACT_2}\n"
    "1002\t0\t5\tBRCA1\tGene\t672\n"
    "1002\t10\t23\tbreast cancer\tDisease\tD001943\n"
    "1002\t37\t42\tBRCA1\tGene\t672\n"
    "1002\t49\t74\tbreast and ovarian cancer\tDisease\tD001943|D010051\tbreast cancer|ovarian cancer\n"
    "1002\t60\t74\tovarian cancer\tDisease\t-\n"
    "1002\t24\t33\tMutations\tVariant\n"
    "\n\n"
)


def test_pubtator_documents_offsets_clusters_and_relations(tmp_path):
    path = write(tmp_path / "train.PubTator", PUBTATOR)
    first, second = PubTatorReader("cdr").read(path)
    assert (first.doc_id, second.doc_id, first.dataset) == ("1001", "1002", "cdr")
    assert first.text == f"{TITLE_1}\n{ABSTRACT_1}"
    assert first.sentences[0] == ["Cisplatin", "-", "induced", "nephrotoxicity", "in", "rats", "."]  # the title
    assert len(first.sentences) == 3
    assert token_texts(first, first.entities) == [("Cisplatin", "Chemical"), ("nephrotoxicity", "Disease"),
                                                  ("acute renal failure", "Disease"), ("cisplatin", "Chemical"),
                                                  ("Famotidine", "Chemical")]
    assert surfaces(first, first.entities) == token_texts(first, first.entities)
    assert first.entities[2:4] == [Span(9, 12, "Disease"), Span(14, 15, "Chemical")]
    concepts = first.attributes["concepts"]
    assert [concepts.get(span.bounds) for span in first.entities] == ["D002945", "D007674", "D058186", "D002945", None]  # -1: none
    assert first.clusters == [[Span(0, 1), Span(14, 15)]]  # Cisplatin ... cisplatin; singletons dropped
    assert first.attributes["relations"] == [{"label": "CID", "head": "D002945", "tail": "D058186", "extra": ()}]

    assert second.text == f"{TITLE_2}\n{ABSTRACT_2}"
    assert second.sentences[0] == ["BRCA1", "and", "breast", "cancer"]
    assert token_texts(second, second.entities) == [
        ("BRCA1", "Gene"), ("breast cancer", "Disease"), ("BRCA1", "Gene"), ("breast and ovarian cancer", "Disease"),
        ("ovarian cancer", "Disease"), ("Mutations", "Variant")]
    assert second.entities[2] == Span(6, 7, "Gene")  # abstract offsets continue after the title and one character
    concepts = second.attributes["concepts"]
    assert [concepts.get(span.bounds) for span in second.entities] == ["672", "D001943", "672", "D001943|D010051", None, None]
    # the whole id field is the key: "D001943" and "D001943|D010051" are different concepts
    assert second.clusters == [[Span(0, 1), Span(6, 7)]]
    assert second.attributes["relations"] == []


def test_pubtator_via_registry_and_no_concept_option(tmp_path):
    path = write(tmp_path / "train.PubTator", PUBTATOR)
    first, _ = READERS.get("pubtator")(dataset="x", no_concept=["-"]).read(path)
    assert first.dataset == "x"
    assert first.attributes["concepts"][first.entities[-1].bounds] == "-1"
    with pytest.raises(ConfigError, match="no_concept"):
        PubTatorReader(no_concept="-")


def test_pubtator_split_tokens(tmp_path):
    path = write(tmp_path / "x.txt", f"1|t|{TITLE_1}\n1|a|{ABSTRACT_1}\n1\t0\t5\tCispl\tChemical\t-\n")
    (document,) = PubTatorReader().read(path)
    assert token_texts(document, document.entities) == [("Cispl", "Chemical")]
    with pytest.raises(DataFormatError) as error:
        PubTatorReader(split_tokens=False).read(path)
    assert_names(error.value, path, 3)


def test_pubtator_title_only_and_no_blank_line_between_documents(tmp_path):
    path = write(tmp_path / "x.txt", "7|t|Aspirin helps.\n7\t0\t7\tAspirin\tChemical\tD001241\n8|t|Nothing.\n8|a|\n")
    first, second = PubTatorReader().read(path)
    assert (first.text, first.entities) == ("Aspirin helps.", [Span(0, 1, "Chemical")])
    assert (second.doc_id, second.text) == ("8", "Nothing.\n")


BIORED = (  # BioRED's shape: relation lines with a fifth column, the novelty flag, beside 4-column ones
    "2001|t|Aspirin and warfarin raise bleeding risk.\n"
    "2001|a|Aspirin binds COX1.\n"
    "2001\t0\t7\tAspirin\tChemicalEntity\tD001241\n"
    "2001\t12\t20\twarfarin\tChemicalEntity\tD014859\n"
    "2001\t27\t35\tbleeding\tDiseaseOrPhenotypicFeature\tD006470\n"
    "2001\t42\t49\tAspirin\tChemicalEntity\tD001241\n"
    "2001\t56\t60\tCOX1\tGeneOrGeneProduct\t5742\n"
    "2001\tAssociation\tD001241\tD006470\tNovel\n"
    "2001\tBind\t5742\tD001241\tNo\n"
    "2001\tDrug_Interaction\tD001241\tD014859\n"
    "\n"
    "2002|t|Renal and hepatic failure after paracetamol.\n"
    "2002\t0\t25\tRenal and hepatic failure\tDisease\tD051437|D017093\n"
    "2002\t32\t43\tparacetamol\tChemical\tD000082\n"
    "2002\tCID\tD000082\tD017093\tNo\tannotator 2\n"
)


def test_pubtator_relation_lines_with_extra_columns(tmp_path):
    path = write(tmp_path / "biored.PubTator", BIORED)
    first, second = PubTatorReader().read(path)
    assert token_texts(first, first.entities) == [
        ("Aspirin", "ChemicalEntity"), ("warfarin", "ChemicalEntity"), ("bleeding", "DiseaseOrPhenotypicFeature"),
        ("Aspirin", "ChemicalEntity"), ("COX1", "GeneOrGeneProduct")]
    assert first.attributes["relations"] == [  # a numeric id in the third column does not make a mention line
        {"label": "Association", "head": "D001241", "tail": "D006470", "extra": ("Novel",)},
        {"label": "Bind", "head": "5742", "tail": "D001241", "extra": ("No",)},
        {"label": "Drug_Interaction", "head": "D001241", "tail": "D014859", "extra": ()}]
    # D017093 is one of the ids of the composite mention's field: the relation is kept, every extra column too
    assert second.attributes["relations"] == [
        {"label": "CID", "head": "D000082", "tail": "D017093", "extra": ("No", "annotator 2")}]


def test_pubtator_relation_to_a_concept_without_mention_is_dropped_and_logged(tmp_path, caplog):
    path = write(tmp_path / "x.PubTator", f"1001|t|{TITLE_1}\n1001|a|{ABSTRACT_1}\n"
                                         "1001\t0\t9\tCisplatin\tChemical\tD002945\n"
                                         "1001\t18\t32\tnephrotoxicity\tDisease\tD007674\n"
                                         "1001\t94\t104\tFamotidine\tChemical\t-1\n"
                                         "1001\tCID\tD002945\tD007674\n"
                                         "1001\tCID\tD002945\tD000001\n"  # line 7: no mention of D000001
                                         "1001\tCID\t-1\tD007674\n\n"  # -1 means no concept
                                         f"1002|t|{TITLE_2}\n"
                                         "1002\t0\t5\tBRCA1\tGene\t672\n"
                                         "1002\tAssociation\t672\tD002945\tNovel\n")  # D002945 is in 1001 only
    reader = PubTatorReader()
    with caplog.at_level(logging.WARNING, logger="hmtl.data.readers.standoff"):
        first, second = reader.read(path)
    assert first.attributes["relations"] == [{"label": "CID", "head": "D002945", "tail": "D007674", "extra": ()}]
    assert second.attributes["relations"] == []
    assert reader.dropped_relations == [(7, "D000001"), (8, "-1"), (12, "D002945")]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "dropped 3 relations" in warnings[0] and f"{path}:7" in warnings[0]


PUBTATOR_ERRORS = [
    ("1009\t0\t9\tCisplatin\tChemical\tD002945", "PMID '1009' inside document '1001'"),
    ("1009|a|Another abstract.", "PMID '1009' inside document '1001'"),
    ("1009\tCID\tD1\tD2", "PMID '1009' inside document '1001'"),
    ("1001\t0\tnine\tCisplatin\tChemical\tD002945", "integers"),
    ("1001\t0\t900\tCisplatin\tChemical\tD002945", "outside the text"),
    ("1001\t5\t5\tCisplatin\tChemical\tD002945", "outside the text"),
    ("1001\t0\t9\tcisplatin\tChemical\tD002945", "is 'Cisplatin', not 'cisplatin'"),
    ("1001\t0\t9\tCisplatin\t\tD002945", "no type"),
    ("1001\t0\t9\tCisplatin", "at least 5 columns"),
    ("1001 Cisplatin is a drug", "expected 'PMID|t|title'"),
    ("1001|a|A second abstract.", "second abstract"),
    ("1001|t|A second title.", "second title"),
]


@pytest.mark.parametrize("bad_line, message", PUBTATOR_ERRORS)
def test_pubtator_errors_name_file_and_line(tmp_path, bad_line, message):
    path = write(tmp_path / "x.PubTator", f"1001|t|{TITLE_1}\n1001|a|{ABSTRACT_1}\n"
                                         f"1001\t18\t32\tnephrotoxicity\tDisease\tD007674\n{bad_line}\n\n"
                                         f"1002|t|{TITLE_2}\n")
    with pytest.raises(DataFormatError) as error:
        PubTatorReader().read(path)
    assert_names(error.value, path, 4)
    assert message in str(error.value)


@pytest.mark.parametrize("block", ["1003|a|An abstract without a title.\n", "1003\t0\t2\tAn\tX\t-\n",
                                   "1003\tCID\tD1\tD2\n"])
def test_pubtator_document_without_title(tmp_path, block):
    path = write(tmp_path / "x.PubTator", f"1001|t|{TITLE_1}\n1001|a|{ABSTRACT_1}\n\n{block}")
    with pytest.raises(DataFormatError) as error:
        PubTatorReader().read(path)
    assert_names(error.value, path, 4)
    assert "without a title line" in str(error.value)


def test_pubtator_whitespace_mention(tmp_path):
    path = write(tmp_path / "x.PubTator", f"1|t|{TITLE_1} \n1|a|{ABSTRACT_1}\n1\t41\t42\t \tX\t-\n")
    with pytest.raises(DataFormatError) as error:
        PubTatorReader().read(path)
    assert_names(error.value, path, 3)
    assert "only whitespace" in str(error.value)
