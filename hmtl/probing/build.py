"""Build the ten probing sets from UD treebanks (CoNLL-U), in SentEval's format.

The original sets (Conneau et al., 2018) come from the Toronto Book Corpus and cannot be redistributed; these are
the same tasks defined on dependency trees and UD morphology. docs/PROBING.md gives every definition; in short:

- the source sentences are the treebank sentences of 5 to 28 tokens (the paper's range), without duplicates:
  a sentence that occurs in two splits is kept only in the later one (test > dev > train);
- each split of a task comes from the same split of the treebanks;
- classes are balanced per split (every class is cut down to the rarest one's count);
- every random choice comes from ``random.Random(f"{seed}:{task}")``, so a task does not change when others do.
"""
from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from hmtl.data.readers.conllu import ConlluReader, parse_feats
from hmtl.probing.errors import ProbingError
from hmtl.probing.tasks import SPLITS, TASKS, ProbingTask, resolve_tasks, write_probing_file

Instances = dict[str, list[tuple[str, list[str]]]]  # split -> [(label, tokens)]

# Relations that stay inside a nominal predicate's phrase (TopConstituents).
_NP_INTERNAL = {"det", "amod", "compound", "nummod", "nmod", "case", "flat", "fixed", "clf", "goeswith"}
_NOMINAL = {"NOUN", "PROPN", "PRON", "NUM", "DET", "SYM", "X"}
_CLAUSE_SUBJECTS = {"nsubj", "nsubj:pass", "csubj", "csubj:pass"}
_SUBJECTS = _CLAUSE_SUBJECTS | {"expl"}
_FINAL_PUNCT = {".", "?", "!", "...", "!?", "?!", "…"}


@dataclass
class TreeSentence:
    """One treebank sentence with what the task definitions need. ``heads`` are 1-based (0: the root)."""

    forms: list[str]
    lemmas: list[str]
    upos: list[str]
    xpos: list[str]
    feats: list[dict[str, str]]
    heads: list[int]
    deprels: list[str]
    split: str = ""

    def __len__(self) -> int:
        return len(self.forms)

    @property
    def key(self) -> str:
        return " ".join(self.forms)

    @property
    def root(self) -> int:
        return self.heads.index(0)

    def children(self, i: int) -> list[int]:
        return [k for k, h in enumerate(self.heads) if h == i + 1]

    def rel(self, i: int) -> str:
        """The relation without its subtype: ``nsubj:pass`` -> ``nsubj``."""
        return self.deprels[i].split(":")[0]

    def depth(self) -> int:
        """Nodes on the longest path from the root to a leaf (a one-word sentence has depth 1)."""
        best = 0
        for i in range(len(self)):
            depth, j = 1, i
            while self.heads[j] != 0:
                j = self.heads[j] - 1
                depth += 1
                if depth > len(self):
                    raise ProbingError(f"dependency cycle in sentence {self.key!r}")
            best = max(best, depth)
        return best

    def subtree(self, i: int) -> list[int]:
        nodes, stack = [], [i]
        while stack:
            node = stack.pop()
            nodes.append(node)
            stack.extend(self.children(node))
        return sorted(nodes)

    def finite_tense(self, i: int) -> str | None:
        feats = self.feats[i]
        if feats.get("VerbForm") == "Fin" and feats.get("Tense") in ("Past", "Pres"):
            return feats["Tense"]
        return None


def sentences_from_documents(documents, split: str = "") -> list[TreeSentence]:
    """``Document``s from the ``conllu`` reader -> ``TreeSentence``s (sentences with a single root only)."""
    result = []
    for document in documents:
        tags = document.token_tags
        for i, forms in enumerate(document.sentences):
            heads = [int(h) for h in tags["head"][i]]
            if heads.count(0) != 1:
                continue
            result.append(TreeSentence(
                forms=list(forms), lemmas=tags["lemma"][i], upos=tags["upos"][i], xpos=tags["xpos"][i],
                feats=[parse_feats(f) for f in tags["feats"][i]], heads=heads, deprels=tags["deprel"][i], split=split))
    return result


def treebank_files(data_dir: str | Path, treebanks: Iterable[str] = ("ewt", "gum")) -> dict[str, list[Path]]:
    """The CoNLL-U files of each split: ``<data_dir>/ud_english_ewt/en_ewt-ud-<split>.conllu[.gz]`` and
    ``<data_dir>/gum/gum.<split>.conllu[.gz]``. A missing file is an error that lists what was expected."""
    data_dir = Path(data_dir)
    patterns = {"ewt": "ud_english_ewt/en_ewt-ud-{}.conllu", "gum": "gum/gum.{}.conllu"}
    files: dict[str, list[Path]] = {split: [] for split in SPLITS}
    for treebank in treebanks:
        if treebank not in patterns:
            raise ProbingError(f"unknown treebank {treebank!r}; known: {', '.join(patterns)} (or pass --conllu SPLIT=FILE)")
        for split, name in zip(SPLITS, ("train", "dev", "test")):
            stem = data_dir / patterns[treebank].format(name)
            found = [p for p in (stem, stem.with_name(stem.name + ".gz")) if p.is_file()]
            if not found:
                raise ProbingError(f"treebank {treebank}: {stem}[.gz] not found (set HMTL_DATA_DIR or --data_dir to the corpora folder)")
            files[split].append(found[0])
    return files


def load_sentences(files: dict[str, list[Path]]) -> dict[str, list[TreeSentence]]:
    reader = ConlluReader()
    return {split: [s for path in files.get(split, []) for s in sentences_from_documents(reader.read(path), split)]
            for split in SPLITS}


@dataclass
class BuildOptions:
    seed: int = 1111
    min_length: int = 5
    max_length: int = 28
    length_bins: tuple[tuple[int, int], ...] = ((5, 8), (9, 12), (13, 16), (17, 20), (21, 25), (26, 28))
    wc_words: int = 30  # WordContent classes (the paper has 1000 over 100M words of text)
    wc_rank_band: tuple[int, int] = (100, 2000)  # training-frequency ranks the target words come from
    depth_range: tuple[int, int] = (3, 7)  # Depth classes; deeper trees go to the last class, shallower are dropped
    top_classes: int = 20  # TopConstituents: the most frequent patterns - 1, plus OTHER (the paper: 19 + OTHER)
    top_min_count: int = 20  # ... among the patterns with at least this many sentences in dev and in test
    top_min_train: int = 100  # ... and this many in train
    disjoint_targets: bool = True  # Tense/SubjNumber/ObjNumber: a target lemma of dev/test never in train (the paper)
    max_per_class: int | None = None


@dataclass
class BuildReport:
    task: str
    counts: dict[str, int]
    labels: list[str]
    details: dict = field(default_factory=dict)


def prepare_sources(sentences: dict[str, list[TreeSentence]], options: BuildOptions) -> dict[str, list[TreeSentence]]:
    """Sentences of ``min_length``..``max_length`` tokens with no whitespace inside a token, each kept once and in
    one split only (test wins over dev, dev over train)."""
    seen: set[str] = set()
    kept: dict[str, list[TreeSentence]] = {}
    for split in reversed(SPLITS):
        kept[split] = []
        for sentence in sentences.get(split, []):
            if not options.min_length <= len(sentence) <= options.max_length:
                continue
            if any(not f or any(c.isspace() for c in f) for f in sentence.forms):
                continue
            if sentence.key in seen:
                continue
            seen.add(sentence.key)
            kept[split].append(sentence)
    return {split: kept[split] for split in SPLITS}


# ---------------------------------------------------------------------------------------------------- the tasks


def _classify(sources, label_of: Callable[[TreeSentence], str | None]) -> Instances:
    out: Instances = {}
    for split, sentences in sources.items():
        out[split] = [(label, s.forms) for s in sentences if (label := label_of(s)) is not None]
    return out


def build_length(sources, rng, options, details) -> Instances:
    def label(s: TreeSentence):
        for i, (low, high) in enumerate(options.length_bins):
            if low <= len(s) <= high:
                return str(i)
        return None

    details["bins"] = [list(b) for b in options.length_bins]
    return _classify(sources, label)


def build_word_content(sources, rng, options, details) -> Instances:
    frequency = Counter(f.lower() for s in sources["tr"] for f in s.forms)
    low, high = options.wc_rank_band
    candidates = [w for w, _ in frequency.most_common()[low:high] if w.isalpha() and len(w) > 1]
    per_split = {split: Counter(w for s in sentences for w in {f.lower() for f in s.forms})
                 for split, sentences in sources.items()}
    sizes = {split: max(1, len(sentences)) for split, sentences in sources.items()}
    # words frequent enough in every split to give each class the same, largest possible number of sentences
    score = {w: min(per_split[split][w] / sizes[split] for split in SPLITS) for w in candidates}
    words = sorted(candidates, key=lambda w: (-score[w], w))[: options.wc_words]
    targets = set(words)
    details["words"] = sorted(words)

    def label(s: TreeSentence):
        hits = {f.lower() for f in s.forms} & targets
        return hits.pop() if len(hits) == 1 else None

    return _classify(sources, label)


def build_depth(sources, rng, options, details) -> Instances:
    low, high = options.depth_range
    details["classes"] = f"{low}..{high} ({high} means {high} or deeper)"

    def label(s: TreeSentence):
        depth = s.depth()
        return str(min(depth, high)) if depth >= low else None

    return _classify(sources, label)


def _phrase(s: TreeSentence, i: int) -> str:
    """A constituent label for dependent ``i`` of the root, from its relation and part of speech."""
    rel, upos, form = s.rel(i), s.upos[i], s.forms[i]
    if rel == "punct":
        return _punct_label(form)
    if rel == "cc":
        return "CC"
    if rel in ("discourse",) or upos == "INTJ":
        return "INTJ"
    kids = s.children(i)
    if rel in ("csubj", "ccomp", "advcl", "parataxis") or upos in ("VERB", "AUX") or any(
            s.rel(k) in ("cop", "aux", "nsubj") for k in kids):
        return "SBAR" if any(s.rel(k) == "mark" for k in kids) else "S"
    if rel == "advmod" or upos == "ADV":
        return "ADVP"
    if upos == "ADJ":
        return "ADJP"
    if upos == "ADP" or any(s.rel(k) == "case" for k in kids):
        return "PP"
    if upos in _NOMINAL:
        return "NP"
    if upos == "SCONJ" or rel == "mark":
        return "IN"
    return "X"


def _punct_label(form: str) -> str:
    if form in _FINAL_PUNCT or (form and set(form) <= {".", "?", "!", "…"}):
        return "."
    if form in (",", ":"):
        return form
    if form == ";":
        return ":"
    return "PUNCT"


def _predicate(s: TreeSentence, r: int) -> str:
    upos = s.upos[r]
    if upos in ("VERB", "AUX") or any(s.rel(k) in ("aux", "cop") for k in s.children(r)):
        return "VP"
    return {"ADJ": "ADJP", "ADV": "ADVP", "ADP": "PP", "INTJ": "INTJ"}.get(upos, "NP" if upos in _NOMINAL else "X")


def _clausal_conj(s: TreeSentence, r: int) -> list[int]:
    """Dependents of the root that are coordinated clauses with their own subject."""
    return [c for c in s.children(r) if s.rel(c) == "conj" and any(s.deprels[k] in _CLAUSE_SUBJECTS for k in s.children(c))]


def top_constituents(s: TreeSentence) -> str:
    """The sequence of constituents right under the sentence node, read off the dependency tree.

    Each dependent of the root before the predicate is a constituent of its own (NP, PP, ADVP, SBAR, CC, ``,``
    ...); the predicate starts at the root or at its first auxiliary or copula (or, for a nominal predicate, its
    first determiner, modifier or case marker) and, with everything after it, makes one phrase (VP for verbal and
    copular predicates, else NP/ADJP/...); a subject after the predicate's start (questions: ``Have you seen``)
    interrupts it; a parataxis after it is an ``S``; final punctuation is ``.``. A main clause with one
    coordinated clause that has its own subject is ``S_CC_S`` (``S_,_CC_S`` with a comma).
    """
    r = s.root
    n = len(s)
    end = n  # trailing punctuation attached to the root
    while end - 1 > r and s.heads[end - 1] == r + 1 and s.rel(end - 1) == "punct":
        end -= 1
    tail = [_punct_label(s.forms[i]) for i in range(end, n)]
    conj = _clausal_conj(s, r)
    labels: list[tuple[str, bool]] = []  # (label, part of the predicate phrase)
    if conj:
        c = conj[-1]
        start = s.subtree(c)[0]
        labels.append(("S", False))
        if start > 0 and s.rel(start - 1) == "punct" and s.heads[start - 1] == r + 1:
            labels.append((_punct_label(s.forms[start - 1]), False))
        k = start
        while k < c and s.heads[k] == c + 1 and s.rel(k) in ("punct", "cc"):
            labels.append((_phrase(s, k), False))
            k += 1
        labels.append(("S", False))
    else:
        predicate = _predicate(s, r)
        nominal = predicate != "VP"
        in_predicate = False
        for k in sorted(s.children(r) + [r]):
            if k >= end:
                break
            if k >= r:
                parataxis = k > r and s.rel(k) == "parataxis"
                labels.append(("S", False) if parataxis else (predicate, True))
            elif s.deprels[k] in _SUBJECTS:
                in_predicate = False
                labels.append((_phrase(s, k), False))
            elif s.rel(k) in ("aux", "cop") or (nominal and s.rel(k) in _NP_INTERNAL) or (in_predicate and s.rel(k) != "punct"):
                in_predicate = True
                labels.append((predicate, True))
            else:
                labels.append((_phrase(s, k), False))
    merged: list[tuple[str, bool]] = []
    for label, part in labels + [(t, False) for t in tail]:
        if merged and merged[-1] == (label, part) and (part or label in (".", "PUNCT")):
            continue  # one predicate phrase; one final-punctuation mark
        merged.append((label, part))
    return "_".join(label for label, _ in merged)


def build_top_constituents(sources, rng, options, details) -> Instances:
    patterns = {split: [top_constituents(s) for s in sentences] for split, sentences in sources.items()}
    train = Counter(patterns["tr"])
    present = {split: Counter(patterns[split]) for split in ("va", "te")}
    kept = [p for p, count in sorted(train.items(), key=lambda item: (-item[1], item[0]))
            if count >= options.top_min_train and all(present[split][p] >= options.top_min_count for split in present)]
    kept = kept[: options.top_classes - 1]
    details["patterns"] = kept
    keep = set(kept)
    out: Instances = {}
    for split, sentences in sources.items():
        out[split] = [(p if p in keep else "OTHER", s.forms) for p, s in zip(patterns[split], sentences)]
    return out


def main_tense(s: TreeSentence) -> tuple[str, str] | None:
    """(``PAST``|``PRES``, lemma of the main verb) from the first finite verb of the main clause: the root, or an
    auxiliary or copula of the root (``has gone`` is present, ``was going`` past); None without one."""
    r = s.root
    candidates = sorted([r] + [k for k in s.children(r) if s.rel(k) in ("aux", "cop")])
    for k in candidates:
        tense = s.finite_tense(k)
        if tense:
            return ("PAST" if tense == "Past" else "PRES"), s.lemmas[r].lower()
    return None


def _argument_number(s: TreeSentence, relations: tuple[str, ...]) -> tuple[str, str] | None:
    """(``NN``|``NNS``, lemma) of the root's first dependent with one of ``relations`` when it is a common noun with
    a grammatical number and is not coordinated (``the cat and the dog`` is plural whatever its head says)."""
    for k in s.children(s.root):
        if s.deprels[k] in relations:
            if s.upos[k] != "NOUN" or any(s.rel(c) == "conj" for c in s.children(k)):
                return None
            number = s.feats[k].get("Number")
            if number == "Sing":
                return "NN", s.lemmas[k].lower()
            if number in ("Plur", "Ptan"):
                return "NNS", s.lemmas[k].lower()
            return None
    return None


def _targeted(sources, target_of, options, details) -> Instances:
    """Instances labelled by ``target_of`` -> (label, target lemma). With ``disjoint_targets``, a target lemma that
    occurs in test is dropped from dev and train, one in dev from train (the paper keeps targets apart)."""
    labelled = {split: [(t, s) for s in sentences if (t := target_of(s)) is not None] for split, sentences in sources.items()}
    if options.disjoint_targets:
        later: set[str] = set()
        for split in reversed(SPLITS):
            kept = [(t, s) for t, s in labelled[split] if t[1] not in later]
            details.setdefault("dropped_for_shared_targets", {})[split] = len(labelled[split]) - len(kept)
            later |= {t[1] for t, _ in labelled[split]}
            labelled[split] = kept
    return {split: [(t[0], s.forms) for t, s in items] for split, items in labelled.items()}


def build_tense(sources, rng, options, details) -> Instances:
    return _targeted(sources, main_tense, options, details)


def build_subj_number(sources, rng, options, details) -> Instances:
    return _targeted(sources, lambda s: _argument_number(s, ("nsubj", "nsubj:pass")), options, details)


def build_obj_number(sources, rng, options, details) -> Instances:
    return _targeted(sources, lambda s: _argument_number(s, ("obj",)), options, details)


def _binary(sources, rng, change: Callable[[TreeSentence, random.Random], list[str] | None], labels: tuple[str, str]) -> Instances:
    """Of each split's sentences that ``change`` applies to, half are changed (label ``labels[1]``) and half kept
    (``labels[0]``): both halves are the same kind of sentence, and no sentence is in both."""
    original, changed = labels
    out: Instances = {}
    for split, sentences in sources.items():
        order = list(sentences)
        rng.shuffle(order)
        eligible = [(s, new) for s in order if (new := change(s, rng)) is not None and new != s.forms]
        half = len(eligible) // 2
        out[split] = [(changed, new) for _, new in eligible[:half]] + [(original, s.forms) for s, _ in eligible[half:2 * half]]
    return out


def shift_bigram(s: TreeSentence, rng: random.Random) -> list[str] | None:
    """Invert two adjacent words (never punctuation, never the first word, whose capital would give it away)."""
    positions = [i for i in range(1, len(s) - 1)
                 if s.upos[i] != "PUNCT" and s.upos[i + 1] != "PUNCT" and s.forms[i].lower() != s.forms[i + 1].lower()]
    if not positions:
        return None
    i = rng.choice(positions)
    forms = list(s.forms)
    forms[i], forms[i + 1] = forms[i + 1], forms[i]
    return forms


def build_bigram_shift(sources, rng, options, details) -> Instances:
    return _binary(sources, rng, shift_bigram, ("O", "I"))


def _band(count: int) -> int:
    return int(math.log2(count)) if count > 0 else 0


def build_odd_man_out(sources, rng, options, details) -> Instances:
    # words of the training sentences by fine part of speech (NN, NNS, VB, VBD, ...) and log2-frequency band
    counts: Counter = Counter()
    for s in sources["tr"]:
        for form, upos, xpos in zip(s.forms, s.upos, s.xpos):
            if upos in ("NOUN", "VERB") and form.isalpha():
                counts[(form.lower(), upos, xpos)] += 1
    vocabulary: dict[tuple[str, str, int], list[str]] = defaultdict(list)
    for (word, upos, xpos), count in sorted(counts.items()):
        if count >= 2:
            vocabulary[(upos, xpos, _band(count))].append(word)
    details["vocabulary_words"] = sum(len(v) for v in vocabulary.values())

    def replace(s: TreeSentence, rng: random.Random) -> list[str] | None:
        positions = [i for i in range(len(s)) if s.upos[i] in ("NOUN", "VERB") and s.forms[i].isalpha()
                     and (i == 0 or s.forms[i].islower())]
        rng.shuffle(positions)
        for i in positions:
            word = s.forms[i].lower()
            band = _band(counts[(word, s.upos[i], s.xpos[i])])
            words = [w for w in vocabulary.get((s.upos[i], s.xpos[i], band), []) if w != word and w not in s.forms]
            if words:
                new = rng.choice(words)
                forms = list(s.forms)
                forms[i] = new.capitalize() if s.forms[i][0].isupper() else new
                return forms
        return None

    return _binary(sources, rng, replace, ("O", "C"))


def _lower_first(tokens: list[str], s: TreeSentence, keep_capital: Callable[[str], bool] | None) -> list[str]:
    """Lower-case the sentence's first word where it moves inside, unless it is a proper noun, ``I``, an acronym,
    or a word that ``keep_capital`` says is written capitalized inside sentences too."""
    tokens = list(tokens)
    word = tokens[0] if tokens else ""
    if word[:1].isupper() and s.upos[0] != "PROPN" and word != "I" and not word.isupper() \
            and not (keep_capital and keep_capital(word)):
        tokens[0] = word[:1].lower() + word[1:]
    return tokens


def invert_coordination(s: TreeSentence, rng: random.Random | None = None,
                        keep_capital: Callable[[str], bool] | None = None) -> list[str] | None:
    """``A , but B .`` -> ``B , but A .`` for a root with exactly one coordinated clause (both with a subject),
    the second clause running to the end of the sentence but for final punctuation; None when not applicable."""
    r = s.root
    if not any(s.deprels[k] in _CLAUSE_SUBJECTS for k in s.children(r)):
        return None
    conj = [c for c in s.children(r) if s.rel(c) == "conj"]
    clausal = _clausal_conj(s, r)
    if len(conj) != 1 or len(clausal) != 1:
        return None
    c = clausal[0]
    span = s.subtree(c)
    if span != list(range(span[0], span[-1] + 1)) or span[0] <= r:
        return None
    end = len(s)
    while end - 1 > span[-1] and s.heads[end - 1] == r + 1 and s.rel(end - 1) == "punct":
        end -= 1
    if end != span[-1] + 1:
        return None
    start = span[0]
    connector_end = start
    while connector_end < c and s.heads[connector_end] == c + 1 and s.rel(connector_end) in ("punct", "cc"):
        connector_end += 1
    if connector_end == start or s.rel(connector_end - 1) != "cc":
        return None
    connector_start = start
    if start > 0 and s.rel(start - 1) == "punct" and s.heads[start - 1] == r + 1:  # a comma attached to the first clause
        connector_start = start - 1
    first = list(range(0, connector_start))
    second = list(range(connector_end, end))
    if len(first) < 2 or len(second) < 2 or any(s.upos[i] == "PUNCT" for i in (first[0], second[0])):
        return None
    first_words = _lower_first([s.forms[i] for i in first], s, keep_capital)
    second_words = [s.forms[i] for i in second]
    if s.forms[0][:1].isupper() and second_words[0][:1].islower():
        second_words[0] = second_words[0][:1].upper() + second_words[0][1:]
    connector = [s.forms[i] for i in range(connector_start, connector_end)]
    return second_words + connector + first_words + [s.forms[i] for i in range(end, len(s))]


def build_coordination_inversion(sources, rng, options, details) -> Instances:
    inside = Counter(f for sentences in sources.values() for s in sentences for f in s.forms[1:])

    def keep_capital(word: str) -> bool:  # written capitalized more often than not when not sentence-initial
        return inside[word] > inside[word.lower()]

    return _binary(sources, rng, lambda s, r: invert_coordination(s, r, keep_capital), ("O", "I"))


BUILDERS = {
    "Length": build_length,
    "WordContent": build_word_content,
    "Depth": build_depth,
    "TopConstituents": build_top_constituents,
    "BigramShift": build_bigram_shift,
    "Tense": build_tense,
    "SubjNumber": build_subj_number,
    "ObjNumber": build_obj_number,
    "OddManOut": build_odd_man_out,
    "CoordinationInversion": build_coordination_inversion,
}
assert set(BUILDERS) == {t.name for t in TASKS}

# --------------------------------------------------------------------------------------------------- balancing


def enforce_disjoint(instances: Instances) -> Instances:
    """Drop a sentence from a split when a later split has it too (test > dev > train), and repeats within a split."""
    seen: set[str] = set()
    out: Instances = {}
    for split in reversed(SPLITS):
        kept = []
        for label, tokens in instances.get(split, []):
            key = " ".join(tokens)
            if key not in seen:
                seen.add(key)
                kept.append((label, tokens))
        out[split] = kept
    return {split: out[split] for split in SPLITS}


def balance(instances: Instances, rng: random.Random, labels: list[str], max_per_class: int | None = None) -> Instances:
    """Per split, the same number of instances for every label of ``labels`` (the rarest one's count), shuffled."""
    out: Instances = {}
    for split in SPLITS:
        groups: dict[str, list] = {label: [] for label in labels}
        for label, tokens in instances.get(split, []):
            if label in groups:
                groups[label].append((label, tokens))
        k = min(len(g) for g in groups.values()) if groups else 0
        if max_per_class is not None:
            k = min(k, max_per_class)
        chosen = []
        for label in labels:
            group = groups[label]
            rng.shuffle(group)
            chosen.extend(group[:k])
        rng.shuffle(chosen)
        out[split] = chosen
    return out


def build_task(task: ProbingTask, sources: dict[str, list[TreeSentence]], options: BuildOptions) -> tuple[Instances, BuildReport]:
    rng = random.Random(f"{options.seed}:{task.name}")
    details: dict = {}
    instances = enforce_disjoint(BUILDERS[task.name](sources, rng, options, details))
    labels = sorted({label for label, _ in instances["tr"]})
    available = {split: Counter(label for label, _ in instances[split]) for split in SPLITS}
    missing = {split: [label for label in labels if not available[split][label]] for split in SPLITS}
    labels = [label for label in labels if all(available[split][label] for split in SPLITS)]
    if len(labels) < 2:
        raise ProbingError(f"probing task {task.name}: fewer than two classes occur in every split "
                           f"(class counts: {({s: dict(c) for s, c in available.items()})}); use more or larger treebanks")
    if any(missing.values()):
        details["classes_dropped_for_missing_split"] = {s: m for s, m in missing.items() if m}
    balanced = balance(instances, rng, labels, options.max_per_class)
    report = BuildReport(task.name, {split: len(balanced[split]) for split in SPLITS}, labels, details)
    return balanced, report


def build_all(sources: dict[str, list[TreeSentence]], output_dir: str | Path, tasks: list[str] | None = None,
              options: BuildOptions | None = None, log: Callable[[str], None] | None = print) -> list[BuildReport]:
    """Build and write the probing files of ``tasks`` (all ten by default) into ``output_dir``, plus
    ``manifest.json`` recording the options, counts and label sets."""
    import json

    options = options or BuildOptions()
    output_dir = Path(output_dir)
    sources = prepare_sources(sources, options)
    if log:
        log("source sentences (%d-%d tokens, unique): %s" % (options.min_length, options.max_length,
                                                              ", ".join(f"{s} {len(sources[s])}" for s in SPLITS)))
    reports = []
    for task in resolve_tasks(tasks):
        instances, report = build_task(task, sources, options)
        write_probing_file(output_dir / task.file, instances)
        reports.append(report)
        if log:
            counts = " ".join(f"{s} {report.counts[s]:>6}" for s in SPLITS)
            log(f"{task.name:<22} {task.file:<28} {counts}  classes {len(report.labels)}")
    manifest = {"options": asdict(options), "sources": {s: len(sources[s]) for s in SPLITS},
                "tasks": {r.task: {"file": resolve_tasks([r.task])[0].file, "counts": r.counts, "labels": r.labels,
                                   **r.details} for r in reports}}
    (output_dir / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return reports
