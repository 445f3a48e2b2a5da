"""The probing file format (SentEval's), task names, and where task files are found."""
import gzip

import pytest

from hmtl.errors import DataFormatError, HmtlError
from hmtl.probing.errors import ProbingError, UnknownTaskError
from hmtl.probing.tasks import (TASK_NAMES, TASKS, get_task, load_task, read_probing_file, resolve_tasks, task_file,
                                write_probing_file)

GOOD = "tr\tb\tThe cat sat .\ntr\ta\tA dog ran .\nva\ta\tBirds fly .\nte\tb\tFish swim here .\nte\ta\tx y\n"


def test_ten_tasks_with_senteval_names_and_files():
    assert TASK_NAMES == ("Length", "WordContent", "Depth", "TopConstituents", "BigramShift", "Tense", "SubjNumber",
                          "ObjNumber", "OddManOut", "CoordinationInversion")
    assert [t.file for t in TASKS] == ["sentence_length.txt", "word_content.txt", "tree_depth.txt",
                                       "top_constituents.txt", "bigram_shift.txt", "past_present.txt",
                                       "subj_number.txt", "obj_number.txt", "odd_man_out.txt",
                                       "coordination_inversion.txt"]


def test_task_aliases_and_unknown_names():
    assert get_task("sentlen").name == "Length"
    assert get_task("past_present").name == "Tense"
    assert get_task("odd_man_out.txt").name == "OddManOut"
    assert [t.name for t in resolve_tasks(["Tense,SOMO", "tense"])] == ["Tense", "OddManOut"]
    assert len(resolve_tasks(None)) == 10
    with pytest.raises(UnknownTaskError, match="unknown probing task 'Lenght'; known: Length") as error:
        get_task("Lenght")
    assert isinstance(error.value, HmtlError)


def test_read_probing_file(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text(GOOD + "\n")
    data = read_probing_file(path, "T")
    assert data.counts() == {"tr": 2, "va": 1, "te": 2}
    assert data.splits["tr"].sentences[0] == ["The", "cat", "sat", "."]
    assert data.label_names == ["a", "b"]  # SentEval: sorted string order of the training labels
    assert data.label_ids("te") == [1, 0]
    assert len(data.all_sentences()) == 5


def test_extra_middle_fields_are_ignored_like_senteval(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text(GOOD.replace("tr\tb\tThe cat sat .", "tr\tb\textra\tThe cat sat ."))
    assert read_probing_file(path).splits["tr"].sentences[0] == ["The", "cat", "sat", "."]


@pytest.mark.parametrize("line, message", [
    ("tr\tonly two fields", "expected '<tr|va|te>"),
    ("xx\ta\tA sentence .", "unknown split 'xx'"),
    ("tr\t\tA sentence .", "empty label"),
    ("tr\ta\t   ", "empty sentence"),
])
def test_malformed_line_names_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.txt"
    path.write_text(GOOD + line + "\n")
    with pytest.raises(DataFormatError, match=message) as error:
        read_probing_file(path)
    assert str(error.value).startswith(f"{path}:6:")


def test_missing_split_and_unseen_label(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("tr\ta\tx y\nva\ta\tx z\n")
    with pytest.raises(DataFormatError, match="no instances of split 'te'"):
        read_probing_file(path)
    path.write_text("tr\ta\tx y\nva\tb\tx z\nte\ta\tq\n")
    with pytest.raises(DataFormatError, match=r"t.txt:2: label 'b' of split 'va' never occurs in the training split"):
        read_probing_file(path)


def test_task_file_lookup(tmp_path):
    with pytest.raises(ProbingError, match="no file for probing task Length.*build_tasks.py"):
        task_file(tmp_path, get_task("Length"))
    (tmp_path / "probing").mkdir()
    with gzip.open(tmp_path / "probing" / "sentence_length.txt.gz", "wt") as handle:
        handle.write(GOOD)
    assert task_file(tmp_path, get_task("Length")).name == "sentence_length.txt.gz"
    assert load_task(tmp_path, "Length").counts()["tr"] == 2
    write_probing_file(tmp_path / "sentence_length.txt", {"tr": [("0", ["a", "b"])], "va": [("0", ["c"])],
                                                          "te": [("0", ["d"])]})
    assert task_file(tmp_path, get_task("Length")) == tmp_path / "sentence_length.txt"


def test_write_round_trip_and_refuses_spaces(tmp_path):
    instances = {"tr": [("x", ["a", "b"]), ("y", ["c"])], "va": [("x", ["d"])], "te": [("y", ["e", "f"])]}
    write_probing_file(tmp_path / "t.txt", instances)
    assert (tmp_path / "t.txt").read_text().splitlines()[0] == "tr\tx\ta b"
    data = read_probing_file(tmp_path / "t.txt")
    assert data.splits["te"].sentences == [["e", "f"]]
    with pytest.raises(ValueError, match="whitespace"):
        write_probing_file(tmp_path / "u.txt", {"tr": [("x", ["a b"])]})
