"""Tag schemes: conlleval chunk decoding (worked out by hand), encoding, round trips, and span F1 on decoded tags."""
import random

import pytest

from hmtl.data.document import Span
from hmtl.data.tagging import convert_tags, split_tag, spans_to_tags, tags_to_spans
from hmtl.metrics.span_f1 import SpanF1


def chunks(tags: str) -> list[tuple[int, int, str]]:
    return [(s.start, s.end, s.label) for s in tags_to_spans(tags.split())]


@pytest.mark.parametrize("tags, expected", [
    # IOB1: I- starts a chunk after O or at the start; B- only separates two adjacent chunks of the same type
    ("I-PER I-PER", [(0, 2, "PER")]),
    ("O I-ORG", [(1, 2, "ORG")]),
    ("I-PER I-LOC", [(0, 1, "PER"), (1, 2, "LOC")]),
    ("I-PER I-PER B-PER", [(0, 2, "PER"), (2, 3, "PER")]),
    ("I-ORG O I-ORG I-ORG", [(0, 1, "ORG"), (2, 4, "ORG")]),
    # IOB2
    ("B-PER I-PER B-PER", [(0, 2, "PER"), (2, 3, "PER")]),
    ("B-PER I-PER O B-LOC", [(0, 2, "PER"), (3, 4, "LOC")]),
    ("B-PER B-PER", [(0, 1, "PER"), (1, 2, "PER")]),
    ("B-PER I-LOC I-LOC", [(0, 1, "PER"), (1, 3, "LOC")]),  # a type switch closes the chunk, opens another
    # BIOES / BILOU
    ("B-PER E-PER S-LOC O B-ORG I-ORG E-ORG", [(0, 2, "PER"), (2, 3, "LOC"), (4, 7, "ORG")]),
    ("U-PER B-LOC L-LOC", [(0, 1, "PER"), (1, 3, "LOC")]),
    ("S-PER S-PER", [(0, 1, "PER"), (1, 2, "PER")]),
    ("B-PER E-PER I-PER", [(0, 2, "PER"), (2, 3, "PER")]),  # I after E starts a new chunk
    ("B-PER E-PER E-PER", [(0, 2, "PER"), (2, 3, "PER")]),  # so does E after E
    ("S-PER I-PER E-PER", [(0, 1, "PER"), (1, 3, "PER")]),
    ("O E-PER", [(1, 2, "PER")]),
    ("B-PER E-LOC", [(0, 1, "PER"), (1, 2, "LOC")]),
    ("B-MISC I-MISC", [(0, 2, "MISC")]),  # a chunk still open at the end is closed there
    ("", []),
    ("O O", []),
])
def test_conlleval_chunks(tags, expected):
    assert chunks(tags) == expected


@pytest.mark.parametrize("tag", ["X-PER", "B-", "PER", "", "o", "b-PER", "-PER"])
def test_invalid_tag_is_named(tag):
    with pytest.raises(ValueError) as error:
        tags_to_spans(["O", tag])
    assert repr(tag) in str(error.value)


def test_split_tag_reads_bilou_as_bioes():
    assert split_tag("L-PER") == ("E", "PER")
    assert split_tag("U-LOC") == ("S", "LOC")
    assert split_tag("I-B-X") == ("I", "B-X")  # the type is everything after the first dash
    assert split_tag("O") == ("O", "")


def test_encode_each_scheme():
    spans = [Span(0, 2, "PER"), Span(2, 3, "PER"), Span(4, 5, "LOC"), Span(5, 7, "ORG")]
    assert spans_to_tags(spans, 8, "bioes") == ["B-PER", "E-PER", "S-PER", "O", "S-LOC", "B-ORG", "E-ORG", "O"]
    assert spans_to_tags(spans, 8, "iob2") == ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG", "I-ORG", "O"]
    assert spans_to_tags(spans, 8, "iob1") == ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG", "I-ORG", "O"]
    assert spans_to_tags([], 3) == ["O", "O", "O"]


def test_encode_rejects_bad_spans():
    with pytest.raises(ValueError, match="overlaps"):
        spans_to_tags([Span(0, 3, "PER"), Span(2, 4, "LOC")], 5)
    with pytest.raises(ValueError, match="overlaps"):
        spans_to_tags([Span(1, 2, "PER"), Span(1, 2, "PER")], 5)
    with pytest.raises(ValueError, match="outside"):
        spans_to_tags([Span(3, 6, "PER")], 5)
    with pytest.raises(ValueError, match="no type"):
        spans_to_tags([Span(0, 1)], 5)
    with pytest.raises(ValueError, match="unknown tag scheme"):
        spans_to_tags([], 5, "bilou")


@pytest.mark.parametrize("scheme", ["bioes", "iob2", "iob1"])
def test_round_trip_random_spans(scheme):
    rng = random.Random(7)
    for _ in range(300):
        length = rng.randint(0, 12)
        spans, position = [], 0
        while position < length:
            position += rng.randint(0, 2)
            width = rng.randint(1, 3)
            if position + width > length:
                break
            spans.append(Span(position, position + width, rng.choice(["PER", "LOC"])))
            position += width
        tags = spans_to_tags(spans, length, scheme)
        assert tags_to_spans(tags) == spans, (scheme, tags)


def test_convert_between_schemes():
    iob1 = "I-PER I-PER B-PER O I-LOC I-ORG".split()
    assert convert_tags(iob1, "bioes") == "B-PER E-PER S-PER O S-LOC S-ORG".split()
    assert convert_tags(convert_tags(iob1, "iob2"), "iob1") == iob1


def test_span_f1_matches_conlleval_by_hand():
    """Two sentences scored as conlleval would print them.

    sentence 1 gold IOB1  I-PER I-PER O I-ORG I-ORG B-ORG O I-LOC -> PER[0,2) ORG[3,5) ORG[5,6) LOC[7,8)
               pred IOB2  B-PER I-PER O I-ORG I-ORG I-ORG O I-MISC -> PER[0,2) ORG[3,6) MISC[7,8)
    sentence 2 gold IOB1  O I-LOC I-LOC O I-PER                   -> LOC[1,3) PER[4,5)
               pred BIOES O B-LOC E-LOC O S-PER                   -> LOC[1,3) PER[4,5)
    found 5 phrases, 6 in gold, 3 correct: precision 3/5 = 60.00%, recall 3/6 = 50.00%,
    FB1 = 2 * 60 * 50 / 110 = 54.55. Per type: PER 2/2/2 -> 100.00; LOC pred 1, gold 2, correct 1 ->
    P 100, R 50, FB1 66.67; ORG pred 1, gold 2, correct 0 -> 0.00; MISC pred 1, gold 0 -> 0.00.
    """
    sentences = [
        ("I-PER I-PER O I-ORG I-ORG B-ORG O I-LOC", "B-PER I-PER O I-ORG I-ORG I-ORG O I-MISC"),
        ("O I-LOC I-LOC O I-PER", "O B-LOC E-LOC O S-PER"),
    ]
    metric = SpanF1()
    for index, (gold, predicted) in enumerate(sentences):
        metric.update([(index, s.start, s.end, s.label) for s in tags_to_spans(predicted.split())],
                      [(index, s.start, s.end, s.label) for s in tags_to_spans(gold.split())])
    result = metric.compute()
    assert result["precision"] == pytest.approx(60.0)
    assert result["recall"] == pytest.approx(50.0)
    assert round(result["f1"], 2) == 54.55
    assert result["f1_PER"] == pytest.approx(100.0)
    assert round(result["f1_LOC"], 2) == 66.67
    assert result["f1_ORG"] == 0.0
    assert result["f1_MISC"] == 0.0
