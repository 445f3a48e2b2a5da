"""The ADE corpus reader on a hand-written split folder (mentions found by surface, ambiguity settled by the
abstract offsets, negatives unannotated), its one-line errors, how the span heads leave the negative sentences out
while the classifier reads them, configs/ade.json's chain, and the real corpus when data/ has it."""
import os
from dataclasses import replace
from pathlib import Path

import pytest

from hmtl.checks import load_config, parse_config
from hmtl.data.document import Document, Relation, Span
from hmtl.data.readers.ade import AdeReader
from hmtl.errors import DataFormatError
from hmtl.model import HierarchicalModel
from hmtl.training.batching import group_batches
from hmtl.training.trainer import build_labels
from conftest import assert_names

DRUG_AE = (
    # "rash" and "heparin" both occur twice; the offsets say which (the sentence starts at 100 in its abstract)
    "100|rash from heparin and more rash after heparin.|rash|127|131|heparin|110|117\n"
    "200|Nausea with cisplatin 20 mg.|Nausea|50|56|cisplatin|62|71\n"
    "200|Nausea with cisplatin 20 mg.|Nausea|50|56|cisplatin|62|71\n"  # a line twice: read once
)
DRUG_DOSE = (
    "200|Nausea with cisplatin 20 mg.|20 mg|72|77|cisplatin|62|71\n"
    # a tie: the sentence starting at 500 or at 493 places both mentions; the later start (first occurrences) wins
    "300|2 mg x 2 mg x.|2 mg|500|504|x|505|506\n"
)
ADE_NEG = (
    "100 NEG Heparin is widely used.\n"
    "100 NEG Heparin is widely used.\n"
    "400 NEG No drug here at all.\n"
)


def split_folder(tmp_path: Path, ae=DRUG_AE, dose=DRUG_DOSE, neg=ADE_NEG) -> Path:
    folder = tmp_path / "train"
    folder.mkdir(exist_ok=True)
    for name, content in (("DRUG-AE.rel", ae), ("DRUG-DOSE.rel", dose), ("ADE-NEG.txt", neg)):
        (folder / name).write_text(content)
    return folder


def texts(document, spans):
    return [(" ".join(document.tokens[s.start : s.end]), s.start, s.label) for s in spans]


def test_ade_reads_mentions_by_surface_relations_labels_and_unannotated_negatives(tmp_path):
    first, second, third, fourth = AdeReader("ade").read(split_folder(tmp_path))
    assert [d.doc_id for d in (first, second, third, fourth)] == ["100", "200", "300", "400"]

    assert first.sentences == [["rash", "from", "heparin", "and", "more", "rash", "after", "heparin", "."],
                               ["Heparin", "is", "widely", "used", "."]]
    # the second "rash" (character 27 = 127 - 100) and the first "heparin" (10 = 110 - 100), not the first of each
    assert texts(first, first.entities) == [("rash", 5, "Adverse-Effect"), ("heparin", 2, "Drug")]
    assert first.relations == [Relation(Span(2, 3, "Drug"), Span(5, 6, "Adverse-Effect"), "Adverse-Effect")]
    assert first.sentence_labels == [["ADE"], ["NEG"]] and first.unannotated == {1}
    assert first.text == "rash from heparin and more rash after heparin.\nHeparin is widely used."
    assert first.char_offsets[9] == (47, 54)  # "Heparin", after the line break

    assert texts(second, second.entities) == [("Nausea", 0, "Adverse-Effect"), ("cisplatin", 2, "Drug"),
                                              ("20 mg", 3, "Dose")]
    drug = Span(2, 3, "Drug")
    assert second.relations == [Relation(drug, Span(0, 1, "Adverse-Effect"), "Adverse-Effect"),
                                Relation(drug, Span(3, 5, "Dose"), "Dose")]
    assert texts(third, third.entities) == [("2 mg", 0, "Dose"), ("x", 2, "Drug")]
    assert fourth.sentence_labels == [["NEG"]] and fourth.unannotated == {0} and not fourth.entities


@pytest.mark.parametrize("file, content, line, message", [
    ("ae", "100|Aspirin helps.|rash|0|4|Aspirin|0|7\n", 1, "Adverse-Effect 'rash' is not in its sentence 'Aspirin helps.'"),
    ("ae", DRUG_AE + "100|too|few|fields\n", 4, "expected 8 '|'-separated fields"),
    ("dose", "200|Take 20 mg of x.|20 mg|5|9|x|16|17\n", 1, "Dose '20 mg': offsets '5' and '9' are not integers 5 characters apart"),
    ("neg", "100 POS Some sentence.\n", 1, "expected 'PMID NEG sentence'"),
    ("neg", "200 NEG Nausea with cisplatin 20 mg.\n", 1, "also an annotated sentence of DRUG-AE.rel (line 2)"),
])
def test_ade_errors_name_file_and_line(tmp_path, file, content, line, message):
    folder = split_folder(tmp_path, **{file: content})
    path = folder / {"ae": "DRUG-AE.rel", "dose": "DRUG-DOSE.rel", "neg": "ADE-NEG.txt"}[file]
    with pytest.raises(DataFormatError) as error:
        AdeReader().read(folder)
    assert_names(error.value, path, line)
    assert message in str(error.value)


def test_ade_wants_a_split_folder(tmp_path):
    folder = split_folder(tmp_path)
    with pytest.raises(DataFormatError, match="expected the folder of one ADE split"):
        AdeReader().read(folder / "DRUG-AE.rel")
    (folder / "ADE-NEG.txt").unlink()
    with pytest.raises(DataFormatError, match="ADE-NEG.txt: file not found"):
        AdeReader().read(folder)


TASKS = [
    {"name": "ner", "type": "span_classifier", "level": "a", "datasets": ["ade"]},
    {"name": "tagger", "type": "crf_tagger", "level": "a", "datasets": ["ade"]},
    {"name": "relation", "type": "relation", "level": "a", "datasets": ["ade"]},
    {"name": "classifier", "type": "classifier", "level": "a", "datasets": ["ade"]},
]


def test_negative_sentences_train_the_classifier_only(tmp_path):
    config = parse_config({"data": {"ade": {"reader": "ade"}}, "levels": [{"name": "a", "hidden_size": 4}],
                           "tasks": TASKS, "chain": "ner&relation|tagger|classifier"})
    documents = AdeReader("ade").read(split_folder(tmp_path))
    model = HierarchicalModel(config, build_labels(config, {"ade": documents}))
    sources = {name: [i.source for i in model.task(name).instances(documents, "ade")] for name in model.tasks}
    annotated = [("100", 0), ("200", 0), ("300", 0)]
    assert sources["ner"] == sources["relation"] == sources["tagger"] == annotated
    assert sources["classifier"] == [("100", 0), ("100", 1), ("200", 0), ("300", 0), ("400", 0)]
    instances = model.task_instances({"ade": documents})
    groups = {group.name: group_batches(group, instances, batch_size=8) for group in config.groups()}
    (joint,) = groups["ner&relation"]
    assert [i.source for i in joint["ner"]] == [i.source for i in joint["relation"]] and len(joint["ner"]) == 3
    assert sum(len(batch["classifier"]) for batch in groups["classifier"]) == 5


def test_a_whole_document_task_refuses_unannotated_sentences(tmp_path):
    config = parse_config({"data": {"ade": {"reader": "ade"}}, "levels": [{"name": "a", "hidden_size": 4}],
                           "tasks": [{"name": "coref", "type": "coreference", "level": "a", "datasets": ["ade"]}]})
    documents = AdeReader("ade").read(split_folder(tmp_path))
    model = HierarchicalModel(config, build_labels(config, {"ade": documents}))
    with pytest.raises(DataFormatError, match="^dataset ade: document '100' has sentences without entity annotation"):
        model.task("coref").instances(documents, "ade")


def test_validate_checks_the_sentence_layers():
    document = Document("d", [["a", "b"], ["c"]], entities=[Span(0, 1, "X")], sentence_labels=[["ADE"], ["NEG"]],
                        unannotated={1})
    document.validate()
    for change, message in [({"unannotated": {0}}, r"Span\(start=0, end=1, label='X'\) is annotated in a sentence "
                                                    "marked unannotated"),
                            ({"unannotated": {2}}, r"unannotated sentences \[2\] are not all sentences of it"),
                            ({"sentence_labels": [["ADE"]]}, "1 sentence label lists for 2 sentences")]:
        with pytest.raises(ValueError, match=message):
            replace(document, **change).validate()


DATA = Path(os.environ.get("HMTL_DATA_DIR", "data"))


@pytest.mark.skipif(not (DATA / "ade").is_dir(), reason="ADE not set up (bash scripts/data_setup.sh ade)")
def test_the_real_ade_dev_split_reads_with_its_published_counts():
    documents = AdeReader().read(DATA / "ade" / "dev")
    labels = [label for document in documents for found in document.sentence_labels for label in found]
    assert len(documents) == 294 and labels.count("ADE") == 403 and labels.count("NEG") == 1696
    assert sum(len(d.relations) for d in documents) == 623 + 28  # no line of the dev split repeats another
    assert load_config(Path(__file__).parents[1] / "configs" / "ade.json").chain == "ner&relation|classifier"
