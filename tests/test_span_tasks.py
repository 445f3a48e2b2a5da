import pytest
import torch

from hmtl.checks import parse_config
from hmtl.data.document import Document, Relation, Span
from hmtl.model import HierarchicalModel
from hmtl.tasks.base import Instance, span_json
from hmtl.modules.spans import PairScorer, SpanExtractor, enumerate_spans, feedforward, pool_between, prune, span_count, span_tensor
from hmtl.tasks.span_classifier import flat_decode
from hmtl.training.evaluation import evaluate
from hmtl.training.trainer import build_labels

from conftest import train_heads


def test_spans_stay_inside_sentences_and_respect_width():
    spans = enumerate_spans([2, 3], max_width=2)
    assert spans == [(0, 1), (0, 2), (1, 2), (2, 3), (2, 4), (3, 4), (3, 5), (4, 5)]


@pytest.mark.parametrize("lengths, width", [([2, 3], 2), ([], 4), ([0, 1, 7], 3), ([5], 8), ([12, 30, 1], 10)])
def test_the_span_count_known_on_the_host_is_the_number_enumerated(lengths, width):
    assert span_count(lengths, width) == len(enumerate_spans(lengths, width))


def test_relation_context_is_the_max_between_the_arguments_in_either_order():
    states = torch.tensor([[0.0, 5.0], [1.0, -1.0], [3.0, -2.0], [-4.0, 0.5], [9.0, 9.0]])
    heads = torch.tensor([[0, 1], [4, 5], [0, 2], [0, 3]])
    tails = torch.tensor([[4, 5], [0, 1], [2, 3], [1, 2]])  # apart, reversed, touching, overlapping
    pooled = pool_between(states, heads, tails)
    assert pooled.tolist() == [[3.0, 0.5], [3.0, 0.5], [0.0, 0.0], [0.0, 0.0]]


def test_relation_context_matches_a_max_over_every_token_between_for_random_pairs():
    torch.manual_seed(0)
    states = torch.randn(37, 3, requires_grad=True)
    bounds = torch.randint(0, 38, (400, 2)).sort(dim=1).values
    heads, tails = bounds[:200], bounds[200:]
    pooled = pool_between(states, heads, tails)
    expected = []
    for (hs, he), (ts, te) in zip(heads.tolist(), tails.tolist()):
        start, end = min(he, te), max(hs, ts)
        expected.append(states[start:end].amax(0) if end > start else torch.zeros(3))
    expected = torch.stack(expected)
    assert torch.equal(pooled, expected)
    weights = torch.randn(200, 3)
    gradient, = torch.autograd.grad((pooled * weights).sum(), states)
    expected_gradient, = torch.autograd.grad((expected * weights).sum(), states)
    assert torch.allclose(gradient, expected_gradient)


def test_span_representation_uses_end_points_and_attention_inside_the_span():
    torch.manual_seed(0)
    extractor = SpanExtractor(input_dim=4, max_width=3)
    states = torch.randn(1, 5, 4)
    tensor, mask = span_tensor([[(1, 3), (4, 5)]])
    g = extractor(states, tensor)
    assert g.shape == (1, 2, extractor.output_dim)
    assert torch.equal(g[0, 0, :4], states[0, 1]) and torch.equal(g[0, 0, 4:8], states[0, 2])
    assert torch.allclose(g[0, 1, -4:], states[0, 4])  # a one-token span attends to its only token


def test_prefix_sum_attention_equals_a_softmax_over_each_span():
    torch.manual_seed(1)
    extractor = SpanExtractor(input_dim=6, max_width=4)
    states = torch.randn(2, 7, 6) * 3
    spans = [[(0, 3), (2, 6), (5, 7)], [(1, 2), (3, 7), (0, 1)]]
    tensor, _ = span_tensor(spans)
    attended = extractor(states, tensor)[..., -6:]
    for b, row in enumerate(spans):
        for s, (start, end) in enumerate(row):
            weights = torch.softmax(extractor.attention(states[b, start:end]).squeeze(-1), 0)
            assert torch.allclose(attended[b, s], weights @ states[b, start:end], atol=1e-5)


def test_span_scores_projected_per_token_equal_the_network_over_the_representations():
    torch.manual_seed(2)
    extractor = SpanExtractor(input_dim=6, max_width=4)
    network = feedforward(extractor.output_dim, 5, 3, dropout=0.0)
    states = (torch.randn(2, 7, 6) * 3).requires_grad_()
    tensor, _ = span_tensor([enumerate_spans([4, 3], 4), enumerate_spans([7], 4)])
    expected = network(extractor(states, tensor))
    scores = extractor.score(states, tensor, network)
    assert torch.allclose(scores, expected, atol=1e-5)
    (gradient,) = torch.autograd.grad(scores.square().sum(), states)
    (expected_gradient,) = torch.autograd.grad(expected.square().sum(), states)
    assert torch.allclose(gradient, expected_gradient, atol=1e-4)


def test_prune_keeps_the_best_k_in_span_order():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.7], [0.3, 0.2, 0.0, 0.0]])
    mask = torch.tensor([[True, True, True, True], [True, True, False, False]])
    indices, kept = prune(scores, mask, [2, 3], [4, 2])
    assert indices[0].tolist() == [1, 3] and kept[0].tolist() == [True, True]
    assert indices[1, :2].tolist() == [0, 1] and kept[1].tolist() == [True, True]


def test_flat_decoding_drops_overlaps_lower_scored():
    kept = flat_decode([(0.9, Span(0, 2, "A")), (0.8, Span(1, 3, "B")), (0.7, Span(3, 4, "C"))])
    assert kept == [Span(0, 2, "A"), Span(3, 4, "C")]


def toy_document(doc_id: str, first: str, last: str, city: str, pronoun: str) -> Document:
    """'<first> <last> lived in <city> . <pronoun> wrote .': a person, a place, Live_In, and the pronoun's cluster."""
    person, place, again = Span(0, 2, "PER"), Span(4, 5, "LOC"), Span(6, 7, "PER")
    return Document(doc_id, [[first, last, "lived", "in", city, "."], [pronoun, "wrote", "."]],
                    entities=[person, place, again], relations=[Relation(person, place, "Live_In")],
                    clusters=[[Span(0, 2), Span(6, 7)]])


def test_all_task_types_learn_toy_documents_and_find_it_all_in_one_they_never_saw():
    torch.manual_seed(0)
    config = parse_config({
        "data": {"toy": {"reader": "dygie"}},
        "embedder": {"char_cnn": {"embedding_dim": 8, "num_filters": 8}, "dropout": 0.0},
        "levels": [{"name": "a", "hidden_size": 24, "dropout": 0.0}, {"name": "b", "hidden_size": 24, "dropout": 0.0}],
        "tasks": [
            {"name": "ner", "type": "crf_tagger", "level": "a", "datasets": ["toy"]},
            {"name": "emd", "type": "span_classifier", "level": "a", "datasets": ["toy"], "options": {"dropout": 0.0}},
            {"name": "re", "type": "relation", "level": "b", "datasets": ["toy"], "options": {"dropout": 0.0}},
            {"name": "coref", "type": "coreference", "level": "b", "datasets": ["toy"], "options": {"dropout": 0.0}},
        ],
    })
    people = [("Ada", "Lovelace", "London", "She"), ("Alan", "Turing", "Manchester", "He"),
              ("Grace", "Hopper", "Arlington", "She"), ("John", "Neumann", "Princeton", "He"),
              ("Marie", "Curie", "Paris", "She"), ("Kurt", "Goedel", "Vienna", "He")]
    training = [toy_document(str(i), *person) for i, person in enumerate(people)]
    held_out = [toy_document("x", "Emmy", "Noether", "Berlin", "She"), toy_document("y", "Niels", "Bohr", "Copenhagen", "He")]
    model = HierarchicalModel(config, build_labels(config, {"toy": training}))
    train_heads(model, model.task_instances({"toy": training}), 80, 5e-3)
    metrics = evaluate(model, model.task_instances({"toy": held_out}), batch_size=8)
    for key in ("MEAN__ner_f1", "MEAN__emd_f1", "MEAN__re_strict_micro_f1", "MEAN__coref_avg_f1"):
        assert metrics[key] == 100.0, (key, metrics[key])


def test_a_nested_head_decodes_nested_mentions_and_a_flat_one_the_best_of_overlapping_ones():
    """Trained on 'University of London' (ORG) around 'London' (LOC): the nested head finds both, the flat head
    (span-based flat NER) keeps one of the two, so its recall is 3 of 4 at a precision of 100."""
    torch.manual_seed(0)
    config = parse_config({
        "data": {"toy": {"reader": "dygie"}},
        "embedder": {"char_cnn": {"embedding_dim": 8, "num_filters": 8}, "dropout": 0.0},
        "levels": [{"name": "a", "hidden_size": 24, "dropout": 0.0}],
        "tasks": [
            {"name": "nested", "type": "span_classifier", "level": "a", "datasets": ["toy"], "options": {"dropout": 0.0}},
            {"name": "flat", "type": "span_classifier", "level": "a", "datasets": ["toy"],
             "options": {"dropout": 0.0, "flat": True}},
        ],
    })
    document = Document("d", [["Ada", "studied", "at", "the", "University", "of", "London", "."], ["She", "left", "."]],
                        entities=[Span(0, 1, "PER"), Span(4, 7, "ORG"), Span(6, 7, "LOC"), Span(8, 9, "PER")])
    model = HierarchicalModel(config, build_labels(config, {"toy": [document]}))
    instances = model.task_instances({"toy": [document]})
    train_heads(model, instances, 60, 5e-3)
    metrics = evaluate(model, instances, batch_size=8)
    assert (metrics["toy__nested_precision"], metrics["toy__nested_recall"]) == (100.0, 100.0)
    assert (metrics["toy__flat_precision"], metrics["toy__flat_recall"]) == (100.0, 75.0)
    ada = [Span(0, 1, "PER")]
    assert model.tasks["flat"].export(ada, 0) == {"entities": [span_json(ada[0], 0)]}  # NER answers as the tagger
    assert model.tasks["nested"].export(ada, 0) == {"mentions": [span_json(ada[0], 0)]}


def test_levels_encode_a_document_sentence_by_sentence():
    torch.manual_seed(0)
    config = parse_config({
        "data": {"toy": {"reader": "dygie"}},
        "embedder": {"char_cnn": {"embedding_dim": 8, "num_filters": 8}, "dropout": 0.0},
        "levels": [{"name": "a", "hidden_size": 6, "dropout": 0.0}, {"name": "b", "hidden_size": 6, "dropout": 0.0}],
        "tasks": [{"name": "coref", "type": "coreference", "level": "b", "datasets": ["toy"]}],
    })
    sentences = [["Ada", "wrote", "."], ["She", "lived", "in", "London", "."], ["Yes"]]
    document = Document("d", sentences, clusters=[[Span(0, 1), Span(3, 4)]])
    model = HierarchicalModel(config, build_labels(config, {"toy": [document]})).eval()
    (instance,) = model.prepare(model.task("coref").instances([document], "toy"))
    assert instance.sentence_lengths == [3, 5, 1]
    alone = model.prepare([Instance(["a", "b"], "x")])[0]  # a shorter single-sentence item in the same batch
    _, joined, mask = model.encode(model.collate([], [instance, alone]), 2)
    _, separate, _ = model.encode(model.collate([], model.prepare([Instance(s, "x") for s in sentences])), 2)
    _, single, _ = model.encode(model.collate([], [alone]), 2)
    for level in range(2):
        expected = torch.cat([separate[level][i, : len(s)] for i, s in enumerate(sentences)])
        assert torch.allclose(joined[level][0, :9], expected, atol=1e-6)
        assert torch.allclose(joined[level][1, :2], single[level][0], atol=1e-6)
        assert not joined[level][1, 2:].any()


def test_pair_scorer_equals_a_feedforward_over_the_concatenated_pair():
    torch.manual_seed(0)
    scorer = PairScorer(dim=5, num_distances=4, distance_dim=3, hidden=7, dropout=0.0)
    g, antecedents, distances = torch.randn(6, 5), torch.randint(0, 6, (6, 4)), torch.randint(0, 4, (6, 4))
    gi, gj = g.unsqueeze(1).expand(-1, 4, -1), g[antecedents]
    concatenated = torch.cat([gi, gj, gi * gj, scorer.distance(distances)], dim=-1)
    expected = scorer.rest(scorer.first(concatenated)).squeeze(-1)
    assert torch.allclose(scorer(g, antecedents, distances), expected, atol=1e-5)


def test_sentence_instances_carry_their_document_context():
    from hmtl.tasks.base import CONTEXT_WORDS, sentence_context

    sentences = [["w"] * (CONTEXT_WORDS + 5), ["Ada", "wrote", "."], ["She", "lived", "."]]
    document = Document("d", sentences, entities=[Span(CONTEXT_WORDS + 5, CONTEXT_WORDS + 6, "PER")])
    before, after = sentence_context(document, 1)
    assert before == ["w"] * CONTEXT_WORDS and after == ["She", "lived", "."]
    assert sentence_context(document, 2) == (["w"] * (CONTEXT_WORDS - 3) + ["Ada", "wrote", "."], [])
    config = parse_config({
        "data": {"toy": {"reader": "dygie"}},
        "levels": [{"name": "a", "hidden_size": 4}],
        "tasks": [{"name": "ner", "type": "crf_tagger", "level": "a", "datasets": ["toy"]},
                  {"name": "emd", "type": "span_classifier", "level": "a", "datasets": ["toy"]}],
    })
    model = HierarchicalModel(config, build_labels(config, {"toy": [document]}))
    for name in ("ner", "emd"):
        second = model.task(name).instances([document], "toy")[1]
        assert second.tokens == ["Ada", "wrote", "."] and second.context == (before, after)


def test_predictor_prepares_each_sentence_once_for_all_sentence_tasks(monkeypatch):
    from hmtl.predict import Predictor

    config = parse_config({
        "data": {"toy": {"reader": "dygie"}},
        "levels": [{"name": "a", "hidden_size": 4}],
        "tasks": [{"name": "ner", "type": "crf_tagger", "level": "a", "datasets": ["toy"]},
                  {"name": "emd", "type": "span_classifier", "level": "a", "datasets": ["toy"]},
                  {"name": "coref", "type": "coreference", "level": "a", "datasets": ["toy"]}],
    })
    document = Document("d", [["Ada", "wrote", "."], ["She", "lived", "."]], entities=[Span(0, 1, "PER")])
    model = HierarchicalModel(config, build_labels(config, {"toy": [document]}))
    prepared = []
    original = model.embedder.prepare
    monkeypatch.setattr(model.embedder, "prepare", lambda tokens, *rest: prepared.append(tokens) or original(tokens, *rest))
    result = Predictor(model).predict(document.sentences)
    assert prepared == [["Ada", "wrote", "."], ["She", "lived", "."], document.tokens]  # two sentences, one document
    assert set(result) >= {"toy__ner", "toy__emd", "toy__coref"}


def test_gold_mentions_longer_than_max_width_are_logged_and_scored_as_misses(tmp_path, caplog):
    """No span of more than max_width tokens is enumerated, so a head cannot find one: training says how many
    there are in each split, and they stay in the gold, or a head perfect on the other spans would score 100 recall."""
    import json
    import logging

    from hmtl.training.trainer import Trainer

    corpus = tmp_path / "toy.jsonl"  # "Ada King Lovelace" (3 tokens) is the one mention over max_width 2
    corpus.write_text(json.dumps({
        "doc_key": "d", "sentences": [["Ada", "King", "Lovelace", "lived", "in", "London", "."], ["She", "wrote", "."], ["She", "died", "."]],
        "ner": [[[0, 2, "PER"], [5, 5, "LOC"]], [[7, 7, "PER"]], [[10, 10, "PER"]]], "clusters": [[[0, 2], [7, 7], [10, 10]]]}) + "\n")
    config = parse_config({
        "data": {"toy": {"reader": "dygie", "train": str(corpus), "validation": str(corpus), "test": str(corpus)}},
        "levels": [{"name": "a", "hidden_size": 4}],
        "tasks": [{"name": "emd", "type": "span_classifier", "level": "a", "datasets": ["toy"], "options": {"max_width": 2}},
                  {"name": "coref", "type": "coreference", "level": "a", "datasets": ["toy"], "options": {"max_width": 2}}],
        "trainer": {"num_epochs": 1},
    })
    with caplog.at_level(logging.WARNING):
        trainer = Trainer(config, tmp_path / "run")
        trainer.train()
    for split in ("train", "validation", "test"):
        assert f"toy__emd {split}: 1 of 4 gold mentions are longer than max_width 2" in caplog.text
        assert f"toy__coref {split}: 1 of 3 gold mentions are longer than max_width 2" in caplog.text

    def perfect(batch):  # every gold span the head can reach, nothing else
        name, head = batch.heads[0]
        if name == "emd":
            return [[[s for s in i.target.entities if s.end - s.start <= 2] for i in head.instances]]
        return [[[[s.bounds for s in cluster if s.end - s.start <= 2] for cluster in i.target.clusters] for i in head.instances]]

    trainer.model.decode_heads = perfect
    metrics = evaluate(trainer.model, trainer.instances["test"], batch_size=8)
    assert metrics["toy__emd_precision"] == 100.0 and metrics["toy__emd_recall"] == 75.0
    assert metrics["toy__coref_muc_precision"] == 100.0 and metrics["toy__coref_muc_recall"] == 50.0
