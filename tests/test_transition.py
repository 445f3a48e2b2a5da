"""BioMTL's transition-based NER formats (``simple``, ``simple-char``): readers, writer, scripts/convert.py.

Fixtures are written to tmp_path; every error must name the file and the exact line."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hmtl.data.document import Document, Span
from hmtl.data.readers.transition import (CharTransitionReader, TransitionReader, flat_entities,
                                          write_transition)
from hmtl.data.tokenization import document_from_text
from hmtl.errors import DataFormatError, HmtlError
from hmtl.registry import READERS
from conftest import assert_names

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "convert.py"

PAPER_SIMPLE = "Barack Obama was a president . ||| TRANSITION(PER) SHIFT SHIFT REDUCE(PER) OUT OUT OUT OUT\n"
PAPER_CHAR = "Barack Obama was a president . ||| TRANSITION(PER,0) REDUCE(PER,12)\n"
PAPER_TOKENS = [["Barack", "Obama", "was", "a", "president", "."]]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path



def surfaces(document):
    tokens = document.tokens
    return [(" ".join(tokens[s.start : s.end]), s.label) for s in document.entities]


def char_surfaces(document):
    offsets = document.char_offsets
    return [(document.text[offsets[s.start][0] : offsets[s.end - 1][1]], s.label) for s in document.entities]


def test_readers_are_registered():
    assert READERS.get("simple") is TransitionReader
    assert READERS.get("simple-char") is CharTransitionReader


# ---------------------------------------------------------------- the paper's example


def test_simple_reads_the_papers_example(tmp_path):
    (document,) = TransitionReader("bio").read(write(tmp_path / "train.txt", PAPER_SIMPLE))
    assert document.doc_id == "train.txt#0"
    assert document.dataset == "bio"
    assert document.sentences == PAPER_TOKENS
    assert document.entities == [Span(0, 2, "PER")]
    assert surfaces(document) == [("Barack Obama", "PER")]


def test_simple_char_reads_the_papers_example(tmp_path):
    (document,) = CharTransitionReader("bio").read(write(tmp_path / "train.txt", PAPER_CHAR))
    assert document.doc_id == "train.txt#0"
    assert document.sentences == PAPER_TOKENS
    assert document.entities == [Span(0, 2, "PER")]
    assert document.text == "Barack Obama was a president ."
    assert document.char_offsets[:2] == [(0, 6), (7, 12)]
    assert char_surfaces(document) == [("Barack Obama", "PER")]


# ---------------------------------------------------------------- documents


def test_simple_documents_are_separated_by_blank_and_docstart_lines(tmp_path):
    text = ("-DOCSTART-\n"
            "\n"
            "IL-2 gene expression ||| TRANSITION(DNA) SHIFT SHIFT REDUCE(DNA) OUT\n"
            "T cells respond ||| TRANSITION(cell_type) SHIFT SHIFT REDUCE(cell_type) OUT\n"
            "\n\n"
            "a ||| b ||| OUT TRANSITION(X) SHIFT REDUCE(X) OUT\n"
            "-DOCSTART-\n"
            "NF-kappa B binds ||| TRANSITION(protein) SHIFT SHIFT REDUCE(protein) OUT   \n"
            "\n")
    documents = TransitionReader().read(write(tmp_path / "docs.txt", text))
    assert [d.doc_id for d in documents] == ["docs.txt#0", "docs.txt#1", "docs.txt#2"]
    first, second, third = documents
    assert first.sentences == [["IL-2", "gene", "expression"], ["T", "cells", "respond"]]
    assert first.entities == [Span(0, 2, "DNA"), Span(3, 5, "cell_type")]  # document-level offsets
    assert second.sentences == [["a", "|||", "b"]]  # the last " ||| " separates the actions
    assert second.entities == [Span(1, 2, "X")]
    assert surfaces(third) == [("NF-kappa B", "protein")]


def test_simple_char_documents_join_lines_and_keep_one_sentence_per_line(tmp_path):
    text = ("Aspirin helps . It costs 5 . ||| TRANSITION(Chemical,0) REDUCE(Chemical,7)\n"
            "No entity here . |||\n"
            "Nor here . ||| \n"
            "-DOCSTART-\n"
            "Breast cancer and ovarian cancer . ||| TRANSITION(Disease,0) REDUCE(Disease,13) "
            "TRANSITION(Disease,18) REDUCE(Disease,32)\n")
    first, second = CharTransitionReader().read(write(tmp_path / "char.txt", text))
    assert [first.doc_id, second.doc_id] == ["char.txt#0", "char.txt#1"]
    assert first.text == "Aspirin helps . It costs 5 .\nNo entity here .\nNor here ."
    # spaCy's sentencizer would split the first line in two; a line is one sentence
    assert first.sentences == [["Aspirin", "helps", ".", "It", "costs", "5", "."],
                               ["No", "entity", "here", "."], ["Nor", "here", "."]]
    assert first.entities == [Span(0, 1, "Chemical")]
    assert second.entities == [Span(0, 2, "Disease"), Span(3, 5, "Disease")]
    assert char_surfaces(second) == [("Breast cancer", "Disease"), ("ovarian cancer", "Disease")]


def test_simple_char_offsets_are_shifted_per_line(tmp_path):
    text = ("Mice were treated . ||| \n"
            "Cisplatin-induced nephrotoxicity occurred . ||| TRANSITION(Chemical,0) REDUCE(Chemical,9) "
            "TRANSITION(Disease,18) REDUCE(Disease,32)\n")
    (document,) = CharTransitionReader().read(write(tmp_path / "c.txt", text))
    assert document.sentences[1] == ["Cisplatin", "-", "induced", "nephrotoxicity", "occurred", "."]
    assert surfaces(document) == [("Cisplatin", "Chemical"), ("nephrotoxicity", "Disease")]
    assert document.entities == [Span(4, 5, "Chemical"), Span(7, 8, "Disease")]


def test_empty_file_is_an_error(tmp_path):
    for reader in (TransitionReader(), CharTransitionReader()):
        with pytest.raises(DataFormatError, match="no documents") as caught:
            reader.read(write(tmp_path / "empty.txt", "\n-DOCSTART-\n\n"))
        assert_names(caught.value, tmp_path / "empty.txt", None)


# ---------------------------------------------------------------- errors

GOOD_SIMPLE = "Ada Lovelace wrote ||| TRANSITION(PER) SHIFT SHIFT REDUCE(PER) OUT\n\n"  # lines 1-2; bad line is 3


@pytest.mark.parametrize("line, message", [
    ("Ada Lovelace wrote TRANSITION(PER) SHIFT", "no '|||' separator"),
    (" ||| OUT", "expected a sentence before"),
    ("Ada  Lovelace ||| OUT OUT OUT", "empty token at position 1"),
    ("Ada Lovelace ||| OUT JUMP", "action 2 'JUMP': unknown action"),
    ("Ada Lovelace ||| OUT TRANSITION(PER SHIFT REDUCE(PER)", "unknown action"),
    ("Ada Lovelace ||| OUT TRANSITION() SHIFT REDUCE()", "expected an entity type"),
    ("Ada Lovelace wrote ||| OUT OUT", "the sentence has 3 tokens, but the actions consume 2"),
    ("Ada Lovelace ||| OUT OUT OUT OUT", "the sentence has 2 tokens, but the actions consume 4"),
    ("Ada Lovelace ||| TRANSITION(PER) SHIFT SHIFT SHIFT REDUCE(PER)", "has 2 tokens, but the actions consume 3"),
    ("Ada Lovelace ||| OUT OUT REDUCE(PER)", "action 3 'REDUCE(PER)': REDUCE without an open entity"),
    ("Ada Lovelace ||| TRANSITION(PER) SHIFT SHIFT REDUCE(LOC)", "REDUCE(LOC) closes an entity of type 'PER'"),
    ("Ada Lovelace ||| TRANSITION(PER) SHIFT TRANSITION(LOC) SHIFT REDUCE(LOC) REDUCE(PER)",
     "TRANSITION while the entity 'PER' is still open"),
    ("Ada Lovelace ||| OUT TRANSITION(PER) SHIFT", "not closed by the end of the line"),
    ("Ada Lovelace ||| TRANSITION(PER) REDUCE(PER) OUT OUT", "empty entity"),
    ("Ada Lovelace ||| SHIFT OUT", "SHIFT outside an entity"),
    ("Ada Lovelace ||| TRANSITION(PER) SHIFT OUT REDUCE(PER)", "OUT inside the open entity 'PER'"),
])
def test_simple_errors_name_file_and_line(tmp_path, line, message):
    path = write(tmp_path / "bad.txt", GOOD_SIMPLE + line + "\nfine ||| OUT\n")
    with pytest.raises(DataFormatError, match=re.escape(message)) as caught:
        TransitionReader().read(path)
    assert_names(caught.value, path, 3)


GOOD_CHAR = "Ada Lovelace wrote . ||| TRANSITION(PER,0) REDUCE(PER,12)\n\nAda wrote . ||| \n"  # bad line is 4


@pytest.mark.parametrize("line, message", [
    ("Ada Lovelace wrote . TRANSITION(PER,0) REDUCE(PER,12)", "no '|||' separator"),
    ("Ada Lovelace ||| TRANSITION(PER,0) SHIFT REDUCE(PER,12)", "action 2 'SHIFT': unknown action"),
    ("Ada Lovelace ||| TRANSITION(PER) REDUCE(PER)", "action 1 'TRANSITION(PER)': unknown action"),
    ("Ada Lovelace ||| TRANSITION(,0) REDUCE(,3)", "expected an entity type"),
    ("Ada Lovelace ||| TRANSITION(PER,zero) REDUCE(PER,12)", "expected an integer character offset, found 'zero'"),
    ("Ada Lovelace ||| TRANSITION(PER,0) REDUCE(PER,1.5)", "expected an integer character offset, found '1.5'"),
    ("Ada Lovelace ||| TRANSITION(PER,0) REDUCE(PER,13)", "offset 13 is outside the sentence text (length 12)"),
    ("Ada Lovelace ||| TRANSITION(PER,-1) REDUCE(PER,3)", "offset -1 is outside"),
    ("Ada Lovelace ||| TRANSITION(PER,4) REDUCE(PER,3)", "the entity starts at 4 and ends at 3"),
    ("Ada Lovelace ||| TRANSITION(PER,4) REDUCE(PER,4)", "the entity starts at 4 and ends at 4"),
    ("Ada Lovelace ||| TRANSITION(PER,0) REDUCE(PER,12) TRANSITION(X,4) REDUCE(X,12)",
     "the entity 'X' [4, 12) 'Lovelace' overlaps the entity 'PER' [0, 12)"),
    ("Ada Lovelace ||| TRANSITION(PER,0) TRANSITION(X,4) REDUCE(X,12) REDUCE(PER,12)",
     "TRANSITION while the entity 'PER' is still open"),
    ("Ada Lovelace ||| REDUCE(PER,3)", "REDUCE without an open entity"),
    ("Ada Lovelace ||| TRANSITION(PER,0) REDUCE(LOC,3)", "closes an entity of type 'PER'"),
    ("Ada Lovelace ||| TRANSITION(PER,4)", "opened at 4 is not closed by the end of the line"),
    ("Ada  Lovelace ||| TRANSITION(PER,3) REDUCE(PER,5)", "covers only whitespace"),
])
def test_simple_char_errors_name_file_and_line(tmp_path, line, message):
    path = write(tmp_path / "bad.txt", GOOD_CHAR + line + "\nfine . ||| \n")
    with pytest.raises(DataFormatError, match=re.escape(message)) as caught:
        CharTransitionReader().read(path)
    assert_names(caught.value, path, 4)


def test_simple_char_token_cut_names_its_line_not_the_documents_first(tmp_path):
    text = "Ada wrote . ||| \nOK . ||| \nAdaLovelace wrote . ||| TRANSITION(PER,0) REDUCE(PER,3)\n"
    path = write(tmp_path / "cut.txt", text)
    with pytest.raises(DataFormatError, match="cuts the token 'AdaLovelace'") as caught:
        CharTransitionReader(split_tokens=False).read(path)
    assert_names(caught.value, path, 3)
    (document,) = CharTransitionReader().read(path)  # by default the token is split at the boundary
    assert document.sentences[2] == ["Ada", "Lovelace", "wrote", "."]
    assert document.entities == [Span(5, 6, "PER")]


# ---------------------------------------------------------------- writing

CONLL = """-DOCSTART- -X- O O

Ada NNP B-PER
Lovelace NNP I-PER
lived VBD O
in IN O
London NNP B-LOC
. . O

IBM NNP B-ORG
hired VBD O
Grace NNP B-PER
Hopper NNP I-PER
. . O

-DOCSTART- -X- O O

IL-2 NN B-protein
gene NN I-protein
expression NN O
in IN O
T NN B-cell_type
cells NNS I-cell_type
costs VBZ O
5 CD O
. . O
More JJR O
follows VBZ O
. . O

Nothing NN O
here RB O
"""


@pytest.mark.parametrize("mode", ["simple", "simple-char"])
def test_round_trip_from_a_column_file(tmp_path, mode):
    source = READERS.get("conll2003")().read(write(tmp_path / "train.conll", CONLL))
    assert [len(d.entities) for d in source] == [4, 2]
    output = tmp_path / f"train.{mode}"
    counts = write_transition(source, output, mode)
    assert (counts.documents, counts.sentences, counts.entities, counts.dropped) == (2, 4, 6, 0)
    read_back = READERS.get(mode)().read(output)
    assert [d.doc_id for d in read_back] == [f"train.{mode}#0", f"train.{mode}#1"]
    for original, copy in zip(source, read_back):
        assert copy.sentences == original.sentences  # also the sentence with a "." inside it
        if mode == "simple":
            assert copy.entities == original.entities
        else:
            assert char_surfaces(copy) == surfaces(original)
            assert copy.entities == original.entities  # these tokens re-tokenize identically


def test_written_lines_and_document_separator(tmp_path):
    (document,) = TransitionReader().read(write(tmp_path / "p.txt", PAPER_SIMPLE))
    document.sentences.append(["Fine", "."])
    write_transition([document, document], tmp_path / "s.txt", "simple")
    block = PAPER_SIMPLE + "Fine . ||| OUT OUT\n"
    assert (tmp_path / "s.txt").read_text() == block + "\n" + block
    write_transition([document], tmp_path / "c.txt", "simple-char")
    assert (tmp_path / "c.txt").read_text() == PAPER_CHAR + "Fine . ||| \n"


def test_nested_entities_keep_the_outermost_and_are_counted(tmp_path):
    tokens = ["the", "IL-2", "receptor", "alpha", "gene", "binds"]
    entities = [Span(1, 2, "protein"), Span(1, 5, "DNA"), Span(1, 4, "protein"), Span(4, 6, "X"),
                Span(0, 1, "A"), Span(0, 1, "A")]
    document = Document("d", [tokens], entities=entities)
    kept, dropped = flat_entities(document.entities)
    assert kept == [Span(0, 1, "A"), Span(1, 5, "DNA")] and dropped == 3  # a duplicate is not a drop
    assert flat_entities([Span(0, 2, "B"), Span(1, 3, "C")]) == ([Span(0, 2, "B")], 1)  # same length: leftmost
    for mode in ("simple", "simple-char"):
        counts = write_transition([document], tmp_path / "n.txt", mode)
        assert (counts.entities, counts.dropped) == (2, 3)
        (back,) = READERS.get(mode)().read(tmp_path / "n.txt")
        assert surfaces(back) == [("the", "A"), ("IL-2 receptor alpha gene", "DNA")]


def test_simple_char_writes_the_original_text_of_tokenized_documents(tmp_path):
    text = "Ada  Lovelace met\tBabbage.\nNext line (U.S.) here."
    document, _ = document_from_text("raw", text, [(0, 13, "PER"), (18, 25, "PER"), (38, 42, "LOC")])
    write_transition([document], tmp_path / "raw.txt", "simple-char")
    assert (tmp_path / "raw.txt").read_text() == (
        "Ada  Lovelace met\tBabbage. ||| TRANSITION(PER,0) REDUCE(PER,13) TRANSITION(PER,18) REDUCE(PER,25)\n"
        "Next line (U.S.) here. ||| TRANSITION(LOC,11) REDUCE(LOC,15)\n")
    (back,) = CharTransitionReader().read(tmp_path / "raw.txt")
    assert back.sentences == document.sentences
    assert char_surfaces(back) == [("Ada  Lovelace", "PER"), ("Babbage", "PER"), ("U.S.", "LOC")]


def test_simple_char_joins_tokens_with_spaces_without_text_and_gzip(tmp_path):
    document = Document("d", [["Grace", "Hopper", "(", "Navy", ")"]], entities=[Span(0, 2, "PER"), Span(3, 4, "ORG")])
    write_transition([document], tmp_path / "out.txt.gz", "simple-char")
    (back,) = CharTransitionReader().read(tmp_path / "out.txt.gz")
    assert back.doc_id == "out.txt#0"
    assert back.text == "Grace Hopper ( Navy )"
    assert back.sentences == document.sentences and back.entities == document.entities


def test_writer_errors(tmp_path):
    spaced = Document("d", [["New York", "is", "big"]], entities=[Span(0, 1, "LOC")])
    with pytest.raises(HmtlError, match="token 'New York' is empty or holds a space"):
        write_transition([spaced], tmp_path / "x.txt", "simple")
    write_transition([spaced], tmp_path / "x.txt", "simple-char")  # raw text can hold it
    assert char_surfaces(CharTransitionReader().read(tmp_path / "x.txt")[0]) == [("New York", "LOC")]
    untyped = Document("d", [["a", "b"]], entities=[Span(0, 1)])
    with pytest.raises(HmtlError, match="needs a type"):
        write_transition([untyped], tmp_path / "x.txt", "simple")
    with pytest.raises(HmtlError, match="unknown transition format 'bio'"):
        write_transition([spaced], tmp_path / "x.txt", "bio")


# ---------------------------------------------------------------- scripts/convert.py


def convert(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


def test_convert_script_writes_files_that_read_back(tmp_path):
    source = write(tmp_path / "train.conll", CONLL)
    for mode in ("simple", "simple-char"):
        output = tmp_path / "out" / f"train.{mode}"
        result = convert("--reader", "conll2003", "--input", source, "--output", output, "--format", mode,
                         "--reader_options", '{"extra_columns": {}}')
        assert result.returncode == 0, result.stderr
        assert "2 documents, 4 sentences, 6 entities, 0 nested or overlapping entities dropped" in result.stdout
        documents = READERS.get(mode)().read(output)
        assert [len(d.entities) for d in documents] == [4, 2]


@pytest.mark.parametrize("args, message", [
    (["--reader", "nope"], "error: --reader: unknown reader 'nope'; known: "),
    (["--reader", "conll2003", "--reader_options", '{"colour": 1}'], "error: --reader_options: "),
    (["--reader", "conll2003", "--reader_options", "[1"], "error: --reader_options: expected a JSON object"),
])
def test_convert_script_user_errors_exit_2_with_one_line(tmp_path, args, message):
    source = write(tmp_path / "train.conll", CONLL)
    result = convert(*args, "--input", source, "--output", tmp_path / "o.txt")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(message)
    assert not (tmp_path / "o.txt").exists()


def test_convert_script_missing_input_exits_2(tmp_path):
    missing = tmp_path / "missing.conll"
    result = convert("--reader", "conll2003", "--input", missing, "--output", tmp_path / "o.txt")
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {missing}: file not found"
