"""The CoNLL-2012 reader (``hmtl.data.readers.conll2012``) on a hand-written OntoNotes-style fixture in tmp_path.

Every error must be one line naming the file and the line."""
import logging

import pytest

from hmtl.data.document import Span
from hmtl.data.readers.conll2012 import Conll2012Reader
from hmtl.errors import DataFormatError
from hmtl.registry import READERS
from conftest import assert_names

# Two documents, the first in two parts. Columns aligned with spaces as in OntoNotes; the wsj sentence with a
# predicate has one more column than the one without. "his" is a one-token mention of chain 1 inside "his city"
# of chain 2: "(2|(1)".
CONLL = """\
#begin document (bc/cctv/00/cctv_0001); part 000
bc/cctv/00/cctv_0001  0  0     John  NNP  (TOP(S(NP*     -  -  -  Speaker#1   (PERSON*    (1
bc/cctv/00/cctv_0001  0  1    Smith  NNP           *)    -  -  -  Speaker#1         *)    1)
bc/cctv/00/cctv_0001  0  2  visited  VBD        (VP*  visit  -  1  Speaker#1         *     -
bc/cctv/00/cctv_0001  0  3      New  NNP        (NP*     -  -  -  Speaker#1      (GPE*    (2
bc/cctv/00/cctv_0001  0  4     York  NNP           *     -  -  -  Speaker#1         *     -
bc/cctv/00/cctv_0001  0  5     City  NNP          *))    -  -  -  Speaker#1         *)    2)
bc/cctv/00/cctv_0001  0  6        .    .          *))    -  -  -  Speaker#1         *     -

bc/cctv/00/cctv_0001  0  0       He  PRP  (TOP(S(NP*)    -  -  -  Speaker#1         *    (1)
bc/cctv/00/cctv_0001  0  1    loved  VBD        (VP*   love  -  1  Speaker#1         *     -
bc/cctv/00/cctv_0001  0  2      his PRP$     (NP(NP*)    -  -  -  Speaker#1         *  (2|(1)
bc/cctv/00/cctv_0001  0  3     city   NN         *))    -  -  -  Speaker#1         *    2)
bc/cctv/00/cctv_0001  0  4        .    .          *))    -  -  -  Speaker#1         *     -

#end document
#begin document (bc/cctv/00/cctv_0001); part 001
bc/cctv/00/cctv_0001  1  0    Smith  NNP  (TOP(S(NP*)    -  -  -  Speaker#2   (PERSON)    (1)
bc/cctv/00/cctv_0001  1  1     said  VBD        (VP*    say  -  1  Speaker#2         *     -
bc/cctv/00/cctv_0001  1  2       he  PRP     (S(NP*)    -  -  -  Speaker#2         *    (1)
bc/cctv/00/cctv_0001  1  3     left  VBD        (VP*  leave  -  1  Speaker#2         *     -
bc/cctv/00/cctv_0001  1  4    China  NNP     (NP*))))    -  -  -  Speaker#2     (GPE*)     -
bc/cctv/00/cctv_0001  1  5        .    .           *)    -  -  -  Speaker#2         *     -

#end document
#begin document (nw/wsj/00/wsj_0001); part 000
nw/wsj/00/wsj_0001  0  0     Acme  NNP  (TOP(S(NP*      -    -  -  -  (ORG*   (ARG0*    (4
nw/wsj/00/wsj_0001  0  1    Corp.  NNP          *)      -    -  -  -     *)       *)    4)
nw/wsj/00/wsj_0001  0  2   bought  VBD        (VP*    buy  01  1  -      *      (V*)    -
nw/wsj/00/wsj_0001  0  3       it  PRP        (NP*)     -    -  -  -     *   (ARG1*)   (4)
nw/wsj/00/wsj_0001  0  4        .    .          *))     -    -  -  -     *        *     -

nw/wsj/00/wsj_0001  0  0   Shares  NNS  (TOP(S(NP*)     -    -  -  -     *     -
nw/wsj/00/wsj_0001  0  1     rose  VBD        (VP*)  rise  01  1  -      *     -
nw/wsj/00/wsj_0001  0  2        .    .          *))     -    -  -  -     *     -

#end document
"""


def write(tmp_path, text, name="dev.english.v4_gold_conll"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def line_of(text, needle):
    """The number of the first line of ``text`` holding ``needle``."""
    return next(number for number, line in enumerate(text.splitlines(), start=1) if needle in line)


def test_documents_parts_entities_clusters_speakers_and_genre(tmp_path):
    assert READERS.get("conll2012") is Conll2012Reader
    reader = READERS.get("conll2012")(dataset="ontonotes")
    first, second, wsj = reader.read(write(tmp_path, "# a comment line is skipped\n" + CONLL))
    assert [d.doc_id for d in (first, second, wsj)] == ["bc/cctv/00/cctv_0001_000", "bc/cctv/00/cctv_0001_001",
                                                        "nw/wsj/00/wsj_0001_000"]
    assert {d.dataset for d in (first, second, wsj)} == {"ontonotes"}
    assert [d.attributes["genre"] for d in (first, second, wsj)] == ["bc", "bc", "nw"]
    assert first.sentences == [["John", "Smith", "visited", "New", "York", "City", "."], ["He", "loved", "his", "city", "."]]
    assert first.entities == [Span(0, 2, "PERSON"), Span(3, 6, "GPE")]
    # chain 1 (John Smith, He, his) and chain 2 (New York City, his city); "his" inside "his city"
    assert first.clusters == [[Span(0, 2), Span(7, 8), Span(9, 10)], [Span(3, 6), Span(9, 11)]]
    assert first.token_tags == {"speaker": [["Speaker#1"] * 7, ["Speaker#1"] * 5]}
    # each part is its own document: its chain 1 is not the first part's
    assert second.entities == [Span(0, 1, "PERSON"), Span(4, 5, "GPE")]
    assert second.clusters == [[Span(0, 1), Span(2, 3)]]
    assert second.token_tags["speaker"] == [["Speaker#2"] * 6]
    # sentences of different widths (one predicate column, then none) in one document
    assert wsj.sentences == [["Acme", "Corp.", "bought", "it", "."], ["Shares", "rose", "."]]
    assert wsj.entities == [Span(0, 2, "ORG")]
    assert wsj.clusters == [[Span(0, 2), Span(3, 4)]]
    assert wsj.token_tags["speaker"] == [["-"] * 5, ["-"] * 3]


def test_mention_in_two_chains_is_kept_in_the_first_and_logged(tmp_path, caplog):
    text = CONLL.replace("loved  VBD        (VP*   love  -  1  Speaker#1         *     -",
                         "loved  VBD        (VP*   love  -  1  Speaker#1         *  (5)(6)")
    text = text.replace("city   NN         *))    -  -  -  Speaker#1         *    2)",
                        "city   NN         *))    -  -  -  Speaker#1         *  2)(6)")
    reader = Conll2012Reader()
    with caplog.at_level(logging.INFO, logger="hmtl.data.readers.conll2012"):
        first, *_ = reader.read(write(tmp_path, text))
    assert first.clusters[2:] == [[Span(8, 9)], [Span(10, 11)]]  # "loved" kept in chain 5, dropped from 6
    assert reader.repeated_mentions == 1
    assert "1 mentions are in two clusters" in caplog.text


def replace_line(needle, new):
    """``CONLL`` with the first line holding ``needle`` replaced by ``new`` (a line, or several joined by \\n)."""
    lines = CONLL.splitlines()
    lines[line_of(CONLL, needle) - 1] = new
    return "\n".join(lines) + "\n"


END, PART_1 = line_of(CONLL, "#end document"), line_of(CONLL, "part 001")
JOHN = "bc/cctv/00/cctv_0001  0  0     John  NNP  (TOP(S(NP*     -  -  -  Speaker#1   (PERSON*    (1"
BAD_INPUT = [  # text, the line it must name, what it must say
    (CONLL.replace("Speaker#1         *)    2)", "Speaker#1         *     2)", 1), 5, "never closes"),  # New's line
    (replace_line("visited", "bc/cctv/00/cctv_0001  0  2  visited  VBD  (VP*  visit  -  1  Speaker#1  *)  -"),
     4, "never opened"),
    (replace_line("York", "bc/cctv/00/cctv_0001  0  4  York  NNP  *  -  -  -  Speaker#1  (ORG*  -"), 6, "do not nest"),
    (replace_line("York", "bc/cctv/00/cctv_0001  0  4  York  NNP  *  -  -  -  Speaker#1  PERSON  -"), 6, "malformed"),
    (replace_line("York", "bc/cctv/00/cctv_0001  0  4  York  NNP  *  -  -  -  Speaker#1  (ORG  -"), 6, "malformed"),
    (CONLL.replace("Speaker#1         *)    2)", "Speaker#1         *)    -", 1), 5, "never closes"),  # New's line
    (replace_line("visited", "bc/cctv/00/cctv_0001  0  2  visited  VBD  (VP*  visit  -  1  Speaker#1  *  3)"),
     4, "never opened"),
    (replace_line("visited", "bc/cctv/00/cctv_0001  0  2  visited  VBD  (VP*  visit  -  1  Speaker#1  *  ((3"),
     4, "malformed"),
    (replace_line("visited", "bc/cctv/00/cctv_0001  0  2  visited  VBD  (VP*  visit  -  1  Speaker#1  *  (V*)  -"),
     4, "expected 12 columns like line 2"),
    (replace_line("John", "bc/cctv/00/cctv_0001  0  0  John  NNP  (TOP(S(NP*  -  -  -  (PERSON*  (1"),
     2, "at least 12"),
    ("#end document\n" + CONLL, 1, "'# end document' without '# begin document'"),
    (replace_line("#end document", ""), PART_1, "'# begin document' inside the document begun at line 1"),
    (CONLL[: CONLL.rindex("#end document")], line_of(CONLL, "nw/wsj/00/wsj_0001); part 000"), "no '# end document'"),
    (replace_line("#end document", "#end document\n" + JOHN), END + 1, "outside '# begin document'"),
    (replace_line("Smith  NNP           *)", "bc/cctv/00/cctv_0001  0  2  Smith  NNP  *)  -  -  -  Speaker#1  *)  1)"),
     3, "out of sequence"),
    (replace_line("Smith  NNP           *)", "bc/cctv/00/cctv_0001  1  1  Smith  NNP  *)  -  -  -  Speaker#1  *)  1)"),
     3, "part '1' inside document 'bc/cctv/00/cctv_0001' part '000'"),
    (replace_line("Smith  NNP           *)", "bc/cctv/00/cctv_0002  0  1  Smith  NNP  *)  -  -  -  Speaker#1  *)  1)"),
     3, "document 'bc/cctv/00/cctv_0002' part '0' inside document 'bc/cctv/00/cctv_0001'"),
    (replace_line("#begin document (bc/cctv/00/cctv_0001); part 001", "#begin document bc/cctv/00/cctv_0001"),
     PART_1, "expected '#begin document (NAME); part NUMBER', found 'bc/cctv/00/cctv_0001'"),
    ("#begin document (a/b); part 000\n\n#end document\n", 1, "has no tokens"),
]


@pytest.mark.parametrize("text, line, message", BAD_INPUT)
def test_bad_input_is_one_line_naming_file_and_line(tmp_path, text, line, message):
    path = write(tmp_path, text)
    with pytest.raises(DataFormatError) as error:
        Conll2012Reader().read(path)
    assert_names(error.value, path, line)
    assert message in str(error.value)
    assert "\n" not in str(error.value)
