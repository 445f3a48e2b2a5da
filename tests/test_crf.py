import itertools
import json

import pytest
import torch

from hmtl.modules.crf import CRF, transition_constraints


def brute_force(crf, emissions, length):
    transitions, start, end = crf._scores()
    scores = {}
    for path in itertools.product(range(crf.num_tags), repeat=length):
        s = start[path[0]] + end[path[-1]] + sum(emissions[t, path[t]] for t in range(length))
        s = s + sum(transitions[path[t - 1], path[t]] for t in range(1, length))
        scores[path] = s
    return scores


@pytest.mark.parametrize("constrained", [False, True])
def test_partition_and_viterbi_match_brute_force(constrained):
    torch.manual_seed(0)
    labels = ["O", "B-A", "I-A", "E-A", "S-A"]
    crf = CRF(len(labels), transition_constraints(labels) if constrained else None)
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
    lengths = [4, 2, 1]
    emissions = torch.randn(3, 4, len(labels))
    mask = torch.tensor([[t < n for t in range(4)] for n in lengths])
    log_z = crf.log_partition(emissions, mask)
    paths = crf.viterbi(emissions, mask)
    for b, n in enumerate(lengths):
        scores = brute_force(crf, emissions[b], n)
        expected = torch.logsumexp(torch.stack(list(scores.values())), 0)
        assert torch.allclose(log_z[b], expected, atol=1e-4)
        assert tuple(paths[b]) == max(scores, key=lambda k: scores[k])
        tags = torch.tensor(paths[b] + [0] * (4 - n)).unsqueeze(0)
        assert torch.allclose(crf.path_score(emissions[b : b + 1], tags, mask[b : b + 1])[0], scores[tuple(paths[b])])


def test_nll_is_positive_and_training_it_learns_tags_the_emissions_do_not_show():
    """Emissions all zero: only the start, transition and end scores can learn the cycle 0 1 2 0 1 (and where a
    sequence ends), so decoding it after training shows the likelihood's gradient reaches all three."""
    crf = CRF(3)
    emissions = torch.zeros(2, 5, 3)
    tags = torch.tensor([[0, 1, 2, 0, 1], [0, 1, 2, 0, 0]])
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    first = crf(emissions, tags, mask)
    assert first.item() > 0
    assert crf.viterbi(emissions, mask) != [[0, 1, 2, 0, 1], [0, 1, 2]]
    optimizer = torch.optim.Adam(crf.parameters(), 0.1)
    for _ in range(60):
        optimizer.zero_grad()
        crf(emissions, tags, mask).backward()
        optimizer.step()
    assert crf(emissions, tags, mask).item() < 0.05 * first.item()
    assert crf.viterbi(emissions, mask) == [[0, 1, 2, 0, 1], [0, 1, 2]]


def test_bioes_constraints():
    labels = ["O", "B-A", "I-A", "E-A", "S-A", "B-B"]
    allowed = transition_constraints(labels)
    idx = {label: i for i, label in enumerate(labels)}
    assert not allowed[idx["O"], idx["I-A"]]
    assert allowed[idx["B-A"], idx["I-A"]] and allowed[idx["B-A"], idx["E-A"]]
    assert not allowed[idx["B-A"], idx["O"]]
    assert not allowed[len(labels), idx["E-A"]]  # START -> E
    assert not allowed[idx["B-A"], len(labels) + 1]  # B -> END
    assert allowed[idx["S-A"], idx["B-B"]]


def test_iob2_constraints_let_a_chunk_end_after_b_or_i():
    labels = ["O", "B-A", "I-A", "B-B", "I-B"]
    allowed = transition_constraints(labels, "iob2")
    idx = {label: i for i, label in enumerate(labels)}
    start, end = len(labels), len(labels) + 1
    for a in ("B-A", "I-A"):
        assert allowed[idx[a], idx["O"]] and allowed[idx[a], idx["B-B"]] and allowed[idx[a], end]
        assert allowed[idx[a], idx["I-A"]] and not allowed[idx[a], idx["I-B"]]
    assert not allowed[idx["O"], idx["I-A"]] and not allowed[start, idx["I-A"]]
    assert allowed[start, idx["B-A"]]


def test_iob2_tagger_decodes_entities():
    """The constrained Viterbi of an IOB2 tagger can emit B-X O (it could not with the BIOES constraints)."""
    labels = ["O", "B-A", "I-A"]
    crf = CRF(len(labels), transition_constraints(labels, "iob2"))
    emissions = torch.tensor([[[0.0, 5.0, 0.0], [5.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 5.0]]])
    path = crf.viterbi(emissions, torch.ones(1, 4, dtype=torch.bool))[0]
    assert [labels[i] for i in path] == ["B-A", "O", "B-A", "I-A"]


def test_an_iob2_tagger_trains_end_to_end(tmp_path):
    """``scheme: iob2`` from the config to the scores: B-/I- tags only, learnt and decoded back into entities."""
    from hmtl.checks import parse_config
    from hmtl.training.trainer import Trainer
    from tests.conftest import write_tiny_ner_config

    config = json.loads(write_tiny_ner_config(tmp_path, epochs=20).read_text())
    config["tasks"][0]["options"] = {"scheme": "iob2"}
    test = Trainer(parse_config(config), tmp_path / "run").train()
    tags = json.loads((tmp_path / "run" / "labels.json").read_text())["tasks"]["ner"]["tiny__ner"]
    assert {tag[0] for tag in tags} == {"O", "B", "I"}
    assert test["tiny__ner_f1"] == 100.0

