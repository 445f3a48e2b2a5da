import gzip

import pytest

from hmtl.data.readers.conllu import ConlluReader, parse_feats
from hmtl.errors import DataFormatError
from hmtl.registry import READERS

TWO_DOCS = """# newdoc id = doc-a
# sent_id = a-1
# text = Cats don't sleep.
1	Cats	cat	NOUN	NNS	Number=Plur	4	nsubj	4:nsubj	_
2-3	don't	_	_	_	_	_	_	_	_
2	do	do	AUX	VBP	Mood=Ind|Tense=Pres|VerbForm=Fin	4	aux	4:aux	_
3	n't	not	PART	RB	_	4	advmod	4:advmod	_
4	sleep	sleep	VERB	VB	VerbForm=Inf	0	root	0:root	SpaceAfter=No
5	.	.	PUNCT	.	_	4	punct	4:punct	_

# sent_id = a-2
1	Dogs	dog	NOUN	NNS	Number=Plur	2	nsubj	2:nsubj	_
2	bark	bark	VERB	VBP	Tense=Pres|VerbForm=Fin	0	root	0:root	_
2.1	bark	bark	VERB	VBP	_	_	_	2:conj	_

# newdoc id = doc-b
1	Hi	hi	INTJ	UH	_	0	root	0:root	_
"""


def write(tmp_path, text, name="corpus.conllu"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_documents_sentences_and_layers(tmp_path):
    docs = ConlluReader("ewt").read(write(tmp_path, TWO_DOCS))
    assert [d.doc_id for d in docs] == ["doc-a", "doc-b"]
    assert all(d.dataset == "ewt" for d in docs)
    first = docs[0]
    assert first.sentences == [["Cats", "do", "n't", "sleep", "."], ["Dogs", "bark"]]  # no range, no empty node
    tags = first.token_tags
    assert set(tags) == {"upos", "xpos", "lemma", "feats", "head", "deprel"}
    assert tags["upos"][0] == ["NOUN", "AUX", "PART", "VERB", "PUNCT"]
    assert tags["xpos"][1] == ["NNS", "VBP"]
    assert tags["lemma"][0][2] == "not"
    assert tags["head"][0] == ["4", "4", "4", "0", "4"]
    assert tags["deprel"][1] == ["nsubj", "root"]
    assert tags["feats"][1][1] == "Tense=Pres|VerbForm=Fin"
    assert docs[1].sentences == [["Hi"]]


def test_registered_and_layer_choice(tmp_path):
    assert READERS.get("conllu") is ConlluReader
    docs = ConlluReader(layers=["upos"]).read(write(tmp_path, TWO_DOCS))
    assert set(docs[0].token_tags) == {"upos"}
    with pytest.raises(ValueError, match="unknown token layer"):
        ConlluReader(layers=["shape"])


def test_one_document_per_file_without_newdoc_gzip_and_folder(tmp_path):
    body = "1	Hello	hello	INTJ	UH	_	0	root	0:root	_\n\n1	Bye	bye	INTJ	UH	_	0	root	0:root	_\n"
    plain = write(tmp_path, body, "a.conllu")
    docs = ConlluReader().read(plain)
    assert len(docs) == 1 and docs[0].doc_id == "a.conllu#0" and docs[0].sentences == [["Hello"], ["Bye"]]
    packed = tmp_path / "sub" / "b.conllu.gz"
    packed.parent.mkdir()
    with gzip.open(packed, "wt", encoding="utf-8") as handle:
        handle.write(body)  # no blank line at the end of the file: the last sentence still counts
    assert ConlluReader().read(packed)[0].sentences == [["Hello"], ["Bye"]]
    (packed.parent / "c.conllu").write_text(body.replace("Hello", "Hey"))
    assert [d.sentences[0][0] for d in ConlluReader().read(packed.parent)] == ["Hello", "Hey"]


@pytest.mark.parametrize("line, message", [
    ("1	Hello	hello	INTJ	UH	_	0	root	0:root", "expected 10 tab-separated"),
    ("x	Hello	hello	INTJ	UH	_	0	root	0:root	_", "bad word ID"),
    ("2	Hello	hello	INTJ	UH	_	0	root	0:root	_", "out of sequence"),
    ("1	Hello	hello	INTJ	UH	_	root	root	0:root	_", "bad HEAD"),
    ("1	Hello	hello	INTJ	UH	_	5	root	0:root	_", "points past"),
    ("1		hello	INTJ	UH	_	0	root	0:root	_", "empty FORM"),
])
def test_malformed_lines_name_file_and_line(tmp_path, line, message):
    path = write(tmp_path, f"# sent_id = 1\n# text = Hello\n{line}\n")
    with pytest.raises(DataFormatError, match=message) as error:
        ConlluReader().read(path)
    assert f"{path}:3" in str(error.value)
    assert error.value.line == 3


def test_missing_blank_line_before_newdoc(tmp_path):
    path = write(tmp_path, "1	Hi	hi	INTJ	UH	_	0	root	0:root	_\n# newdoc id = x\n")
    with pytest.raises(DataFormatError, match=":2: '# newdoc' inside a sentence"):
        ConlluReader().read(path)


def test_empty_and_missing_files(tmp_path):
    with pytest.raises(DataFormatError, match="no documents"):
        ConlluReader().read(write(tmp_path, "# just a comment\n\n"))
    with pytest.raises(DataFormatError, match="file not found"):
        ConlluReader().read(tmp_path / "absent.conllu")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(DataFormatError, match="no .conllu"):
        ConlluReader().read(tmp_path / "empty_dir")


def test_parse_feats():
    assert parse_feats("_") == {}
    assert parse_feats("Number=Sing|Person=3") == {"Number": "Sing", "Person": "3"}
