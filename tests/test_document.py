import json

import pytest

from hmtl.data.document import Document, Relation, Span
from hmtl.data.readers.base import Reader
from hmtl.data.readers.conll import DygieReader
from hmtl.errors import DataFormatError
from hmtl.tasks.crf_tagger import outermost


def doc(**layers):
    return Document("d", [["Ada", "Lovelace", "lived", "here", "."], ["She", "left", "."]], **layers)


def test_nested_and_overlapping_spans_are_allowed_and_a_flat_tagger_keeps_the_outermost():
    nested = [Span(0, 2, "PER"), Span(1, 2, "PER"), Span(1, 4, "X")]
    doc(entities=nested).validate()
    assert outermost(nested) == [Span(0, 2, "PER")]


def test_singleton_clusters_are_allowed(tmp_path):
    """A mention nothing else refers to is a cluster of its own (OntoGUM and LitBank keep them; B-cubed and CEAFe
    count them): validated, and kept by a reader, not refused or dropped."""
    document = doc(clusters=[[Span(5, 6)]])
    document.validate()
    assert document.clusters == [[Span(5, 6)]]
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"sentences": document.sentences, "clusters": [[[5, 5]], [[0, 1], [3, 3]]]}) + "\n")
    (read,) = DygieReader().read(path)
    assert read.clusters == [[Span(5, 6)], [Span(0, 2), Span(3, 4)]]


@pytest.mark.parametrize(
    "layers, message",
    [
        ({"entities": [Span(4, 9, "PER")]}, "ends after the last token"),
        ({"entities": [Span(4, 6, "PER")]}, "crosses a sentence boundary"),
        ({"entities": [Span(0, 2, "PER")], "relations": [Relation(Span(0, 2, "PER"), Span(3, 4, "LOC"), "Live_In")]}, "not an entity"),
        ({"clusters": [[Span(0, 2), Span(7, 12)]]}, "coreference mention"),
        ({"token_tags": {"upos": [["X"] * 5]}}, "token layer 'upos'"),
    ],
)
def test_annotations_pointing_outside_the_document_are_errors(layers, message):
    with pytest.raises(ValueError, match=message):
        doc(**layers).validate()


def test_a_document_without_sentences_stops_the_reader_naming_the_file(tmp_path):
    class EmptyDocumentReader(Reader):
        def _read(self, path):
            return [Document("empty", [])]

    with pytest.raises(DataFormatError, match=r"corpus.txt: document 'empty' has no tokens"):
        EmptyDocumentReader().read(tmp_path / "corpus.txt")


def test_span_must_not_be_empty():
    with pytest.raises(ValueError, match="empty"):
        Span(3, 3, "PER")
