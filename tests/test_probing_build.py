"""Building the probing sets from CoNLL-U: definitions on hand-made trees, and whole builds on a synthetic treebank."""
import os
import random
import tempfile
from collections import Counter
from pathlib import Path

import pytest

from hmtl.data.readers.conllu import ConlluReader
from hmtl.probing.build import (BuildOptions, TreeSentence, build_all, invert_coordination, load_sentences,
                                main_tense, prepare_sources, sentences_from_documents, shift_bigram, top_constituents,
                                _argument_number, _targeted)
from hmtl.probing.commands import build_tasks_main
from hmtl.probing.tasks import SPLITS, TASKS, read_probing_file

# ------------------------------------------------------------------------------------------ a synthetic treebank

NOUNS = [("cat", "cats"), ("dog", "dogs"), ("bird", "birds"), ("house", "houses"), ("car", "cars"), ("tree", "trees"),
         ("book", "books"), ("friend", "friends"), ("student", "students"), ("teacher", "teachers"),
         ("river", "rivers"), ("garden", "gardens")]
VERBS = [("see", "sees", "saw"), ("like", "likes", "liked"), ("find", "finds", "found"), ("watch", "watches", "watched"),
         ("follow", "follows", "followed"), ("help", "helps", "helped"), ("visit", "visits", "visited"),
         ("know", "knows", "knew"), ("take", "takes", "took"), ("call", "calls", "called")]
ADJS = ["big", "small", "red", "old", "new", "happy"]


class _Tree:
    def __init__(self):
        self.rows = []  # [form, lemma, upos, xpos, feats, head, deprel]

    def add(self, form, lemma, upos, xpos, feats="_", head=0, deprel="dep"):
        self.rows.append([form, lemma, upos, xpos, feats, head, deprel])
        return len(self.rows)

    def attach(self, node, head, deprel):
        self.rows[node - 1][5], self.rows[node - 1][6] = head, deprel


def _noun_phrase(tree, rng, depth=0, capital=False):
    lemma, plural_form = rng.choice(NOUNS)
    plural = rng.random() < 0.4
    det = tree.add("The" if capital else "the", "the", "DET", "DT", "Definite=Def|PronType=Art")
    adjs = [tree.add(a, a, "ADJ", "JJ", "Degree=Pos") for a in rng.sample(ADJS, rng.randint(0, 2))]
    noun = tree.add(plural_form if plural else lemma, lemma, "NOUN", "NNS" if plural else "NN",
                    "Number=Plur" if plural else "Number=Sing")
    tree.attach(det, noun, "det")
    for adj in adjs:
        tree.attach(adj, noun, "amod")
    if depth < 2 and rng.random() < 0.35:
        case = tree.add("of", "of", "ADP", "IN")
        inner, _ = _noun_phrase(tree, rng, depth + 1)
        tree.attach(case, inner, "case")
        tree.attach(inner, noun, "nmod")
    return noun, plural


def _clause(tree, rng, capital):
    subject, plural = _noun_phrase(tree, rng, capital=capital)
    lemma, present, past = rng.choice(VERBS)
    tense = rng.random() < 0.5
    if tense:
        verb = tree.add(past, lemma, "VERB", "VBD", "Mood=Ind|Tense=Past|VerbForm=Fin")
    elif plural:
        verb = tree.add(lemma, lemma, "VERB", "VBP", "Mood=Ind|Tense=Pres|VerbForm=Fin")
    else:
        verb = tree.add(present, lemma, "VERB", "VBZ", "Mood=Ind|Number=Sing|Person=3|Tense=Pres|VerbForm=Fin")
    obj, _ = _noun_phrase(tree, rng)
    tree.attach(subject, verb, "nsubj")
    tree.attach(obj, verb, "obj")
    return verb


def synthetic_sentence(rng):
    tree = _Tree()
    adverb = None
    if rng.random() < 0.2:
        adverb = tree.add("Yesterday", "yesterday", "ADV", "RB")
        comma = tree.add(",", ",", "PUNCT", ",")
    main = _clause(tree, rng, capital=adverb is None)
    if adverb:
        tree.attach(adverb, main, "advmod")
        tree.attach(comma, main, "punct")
    if rng.random() < 0.3:
        pieces = []
        if rng.random() < 0.5:
            pieces.append(tree.add(",", ",", "PUNCT", ","))
        pieces.append(tree.add("but", "but", "CCONJ", "CC"))
        second = _clause(tree, rng, capital=False)
        for piece in pieces:
            tree.attach(piece, second, "punct" if piece != pieces[-1] else "cc")
        tree.attach(second, main, "conj")
    tree.attach(tree.add(".", ".", "PUNCT", "."), main, "punct")
    tree.attach(main, 0, "root")
    return tree.rows


def write_conllu(path, sentences):
    lines = []
    for n, rows in enumerate(sentences):
        lines.append(f"# sent_id = s{n}")
        for i, (form, lemma, upos, xpos, feats, head, deprel) in enumerate(rows, start=1):
            lines.append(f"{i}\t{form}\t{lemma}\t{upos}\t{xpos}\t{feats}\t{head}\t{deprel}\t_\t_")
        lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def treebank(tmp_path_factory):
    folder = tmp_path_factory.mktemp("treebank")
    rng = random.Random(7)
    files = {}
    for split, size in (("tr", 500), ("va", 160), ("te", 160)):
        files[split] = [write_conllu(folder / f"{split}.conllu", [synthetic_sentence(rng) for _ in range(size)])]
    return files


TEST_OPTIONS = dict(wc_rank_band=(5, 200), wc_words=6, top_min_count=3, top_min_train=5, disjoint_targets=False)


def one(text: str) -> TreeSentence:
    """A TreeSentence from compact rows: 'form lemma UPOS XPOS feats head deprel' per line."""
    rows = [line.split() for line in text.strip().splitlines()]
    with tempfile.TemporaryDirectory() as tmp:
        path = write_conllu(Path(tmp) / "one.conllu", [[[*r[:5], int(r[5]), r[6]] for r in rows]])
        return sentences_from_documents(ConlluReader().read(path))[0]


# ------------------------------------------------------------------------------------------------- definitions

COORDINATED = """
The the DET DT _ 2 det
cat cat NOUN NN Number=Sing 3 nsubj
sleeps sleep VERB VBZ Tense=Pres|VerbForm=Fin 0 root
, , PUNCT , _ 8 punct
but but CCONJ CC _ 8 cc
the the DET DT _ 7 det
dogs dog NOUN NNS Number=Plur 8 nsubj
bark bark VERB VBP Tense=Pres|VerbForm=Fin 3 conj
. . PUNCT . _ 3 punct
"""


def test_coordination_inversion_and_top_constituents():
    s = one(COORDINATED)
    assert invert_coordination(s) == "The dogs bark , but the cat sleeps .".split()
    assert top_constituents(s) == "S_,_CC_S_."
    assert s.depth() == 4  # bark -> dogs -> the, under the root


def test_coordination_needs_two_subjects():
    no_second_subject = one("""
The the DET DT _ 2 det
cat cat NOUN NN Number=Sing 3 nsubj
sleeps sleep VERB VBZ Tense=Pres|VerbForm=Fin 0 root
and and CCONJ CC _ 5 cc
snores snore VERB VBZ Tense=Pres|VerbForm=Fin 3 conj
. . PUNCT . _ 3 punct
""")
    assert invert_coordination(no_second_subject) is None
    assert top_constituents(no_second_subject) == "NP_VP_."


PERFECT = """
Yesterday yesterday ADV RB _ 7 advmod
, , PUNCT , _ 7 punct
the the DET DT _ 4 det
cats cat NOUN NNS Number=Plur 7 nsubj
had have AUX VBD Mood=Ind|Tense=Past|VerbForm=Fin 7 aux
not not PART RB _ 7 advmod
slept sleep VERB VBN Tense=Past|VerbForm=Part 0 root
. . PUNCT . _ 7 punct
"""


def test_tense_number_and_top_constituents_of_a_perfect():
    s = one(PERFECT)
    assert main_tense(s) == ("PAST", "sleep")
    assert _argument_number(s, ("nsubj", "nsubj:pass")) == ("NNS", "cat")
    assert _argument_number(s, ("obj",)) is None
    # the aux starts the VP, the negation inside it does not split it
    assert top_constituents(s) == "ADVP_,_NP_VP_."


COPULA = """
The the DET DT _ 2 det
food food NOUN NN Number=Sing 4 nsubj
is be AUX VBZ Mood=Ind|Tense=Pres|VerbForm=Fin 4 cop
good good ADJ JJ Degree=Pos 0 root
. . PUNCT . _ 4 punct
"""


def test_tense_of_a_copula_and_imperatives_have_none():
    copula = one(COPULA)
    assert main_tense(copula) == ("PRES", "good")
    assert top_constituents(copula) == "NP_VP_."
    imperative = one("""
Take take VERB VB Mood=Imp|VerbForm=Fin 0 root
the the DET DT _ 3 det
book book NOUN NN Number=Sing 1 obj
now now ADV RB _ 1 advmod
. . PUNCT . _ 1 punct
""")
    assert main_tense(imperative) is None
    assert _argument_number(imperative, ("obj",)) == ("NN", "book")
    assert top_constituents(imperative) == "VP_."


def test_bigram_shift_never_moves_the_first_word_or_punctuation():
    s = one(COORDINATED)
    for seed in range(30):
        shifted = shift_bigram(s, random.Random(seed))
        assert shifted[0] == "The" and shifted[-1] == "." and shifted.index(",") == 3
        assert sorted(shifted) == sorted(s.forms) and shifted != s.forms
        diff = [i for i, (a, b) in enumerate(zip(shifted, s.forms)) if a != b]
        assert len(diff) == 2 and diff[1] == diff[0] + 1


def test_targets_kept_apart_across_splits():
    sources = {"tr": [one(PERFECT), one(COPULA)], "va": [], "te": [one(PERFECT)]}
    result = _targeted(sources, main_tense, BuildOptions(disjoint_targets=True), {})
    assert [label for label, _ in result["tr"]] == ["PRES"]  # "sleep" is a test target: not in train
    result = _targeted(sources, main_tense, BuildOptions(disjoint_targets=False), {})
    assert len(result["tr"]) == 2


def test_prepare_sources_dedupes_across_splits_and_filters_length():
    a, b = one(PERFECT), one(COORDINATED)
    short = one("Hi hi INTJ UH _ 0 root")
    kept = prepare_sources({"tr": [a, b, short], "va": [b], "te": [a]}, BuildOptions())
    assert [s.key for s in kept["te"]] == [a.key]
    assert [s.key for s in kept["va"]] == [b.key]
    assert kept["tr"] == []


# ------------------------------------------------------------------------------------------------- whole builds


def _read_all(folder):
    return {task.name: read_probing_file(Path(folder) / task.file, task.name) for task in TASKS}


def test_build_all_ten_tasks(treebank, tmp_path, capsys):
    reports = build_all(load_sentences(treebank), tmp_path, options=BuildOptions(**TEST_OPTIONS))
    printed = capsys.readouterr().out
    assert [r.task for r in reports] == [t.name for t in TASKS]
    assert (tmp_path / "manifest.json").is_file()
    for task, data in _read_all(tmp_path).items():
        assert task in printed
        assert len(data.label_names) >= 2, task
        keys = {}
        for split in SPLITS:
            counts = Counter(data.splits[split].labels)
            assert len(set(counts.values())) == 1, (task, split, counts)  # balanced
            assert set(counts) == set(data.label_names), (task, split)
            keys[split] = {" ".join(s) for s in data.splits[split].sentences}
            assert len(keys[split]) == len(data.splits[split])  # no repeats
        assert not (keys["tr"] & keys["va"]) and not (keys["tr"] & keys["te"]) and not (keys["va"] & keys["te"]), task
    lengths = _read_all(tmp_path)["Length"]
    for label, sentence in zip(lengths.splits["tr"].labels, lengths.splits["tr"].sentences):
        low, high = BuildOptions().length_bins[int(label)]
        assert low <= len(sentence) <= high


def test_build_is_deterministic_under_a_seed(treebank, tmp_path):
    sentences = load_sentences(treebank)
    for folder, seed in (("a", 3), ("b", 3), ("c", 4)):
        build_all(sentences, tmp_path / folder, options=BuildOptions(seed=seed, **TEST_OPTIONS), log=None)
    for task in TASKS:
        first, again, other = ((tmp_path / f / task.file).read_bytes() for f in "abc")
        assert first == again
        if task.name in ("BigramShift", "OddManOut"):
            assert first != other


def test_odd_man_out_keeps_the_part_of_speech(treebank, tmp_path):
    build_all(load_sentences(treebank), tmp_path, ["OddManOut"], BuildOptions(**TEST_OPTIONS), log=None)
    data = read_probing_file(tmp_path / "odd_man_out.txt")
    nouns = {n for pair in NOUNS for n in pair}
    verbs = {form for triple in VERBS for form in triple}
    changed = [s for label, s in zip(data.splits["tr"].labels, data.splits["tr"].sentences) if label == "C"]
    assert changed
    for sentence in changed:
        for word in sentence:
            assert word.lower() in nouns | verbs | set(ADJS) | {"the", "of", "but", ",", ".", "yesterday"}


def test_build_tasks_command(treebank, tmp_path, capsys):
    args = ["--conllu"] + [f"{split}={path}" for split, paths in treebank.items() for path in paths]
    args += ["--output_dir", str(tmp_path / "out"), "--tasks", "Length", "bshift", "--seed", "5"]
    assert build_tasks_main(args) == 0
    out = capsys.readouterr().out
    assert "sentence_length.txt" in out and "bigram_shift.txt" in out and "tr " in out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["bigram_shift.txt", "manifest.json",
                                                                     "sentence_length.txt"]


def test_build_tasks_command_errors(tmp_path, capsys):
    assert build_tasks_main(["--data_dir", str(tmp_path), "--output_dir", str(tmp_path / "o")]) == 2
    assert "en_ewt-ud-train.conllu" in capsys.readouterr().err
    assert build_tasks_main(["--conllu", "train=x.conllu", "--output_dir", str(tmp_path / "o")]) == 2
    assert "SPLIT=FILE" in capsys.readouterr().err
    assert build_tasks_main(["--tasks", "Nope", "--output_dir", str(tmp_path / "o")]) == 2
    assert "unknown probing task 'Nope'" in capsys.readouterr().err
    bad = tmp_path / "bad.conllu"
    bad.write_text("1\tx\n")
    assert build_tasks_main(["--conllu", f"tr={bad}", f"va={bad}", f"te={bad}", "--output_dir", str(tmp_path / "o")]) == 2
    assert f"{bad}:1" in capsys.readouterr().err


def _data_dir():
    return Path(os.environ.get("HMTL_DATA_DIR", "data"))


@pytest.mark.skipif(not any((_data_dir() / "ud_english_ewt").glob("en_ewt-ud-dev.conllu*")),
                    reason="UD English EWT not found under $HMTL_DATA_DIR")
def test_build_from_real_ewt_dev(tmp_path):
    path = next((_data_dir() / "ud_english_ewt").glob("en_ewt-ud-dev.conllu*"))
    sentences = sentences_from_documents(ConlluReader().read(path))
    # EWT dev alone, cut into three pseudo-splits
    splits = {"tr": sentences[: 1400], "va": sentences[1400:1700], "te": sentences[1700:]}
    options = BuildOptions(wc_rank_band=(50, 1000), wc_words=10, top_classes=8, top_min_count=5, top_min_train=20)
    reports = build_all(splits, tmp_path, options=options, log=None)
    data = _read_all(tmp_path)
    for report in reports:
        assert all(report.counts[s] > 0 for s in SPLITS), report
        assert data[report.task].counts() == report.counts
    tense = data["Tense"]
    assert set(tense.label_names) == {"PAST", "PRES"}
