"""The ten SentEval probing tasks (Conneau et al., ACL 2018) and their file format.

A probing file has one instance per line: ``<tr|va|te>\\t<label>\\t<tokenized sentence>`` (SentEval reads the first
field, the second, and the last, so extra middle fields are allowed). The same reader serves the sets that
``probing/build_tasks.py`` builds from UD treebanks and the original SentEval files, under the same file names.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hmtl.data.readers.base import open_text
from hmtl.errors import DataFormatError
from hmtl.probing.errors import ProbingError, UnknownTaskError

SPLITS = ("tr", "va", "te")
SPLIT_NAMES = {"tr": "train", "va": "dev", "te": "test"}


@dataclass(frozen=True)
class ProbingTask:
    name: str  # SentEval's task name (the key of its results)
    file: str  # SentEval's file name under data/probing/
    paper: str  # the column name in the paper's tables
    what: str


TASKS: tuple[ProbingTask, ...] = (
    ProbingTask("Length", "sentence_length.txt", "SentLen", "number of tokens, in 6 bins"),
    ProbingTask("WordContent", "word_content.txt", "WC", "which of N mid-frequency words the sentence contains"),
    ProbingTask("Depth", "tree_depth.txt", "TreeDepth", "depth of the syntactic tree"),
    ProbingTask("TopConstituents", "top_constituents.txt", "TopConst", "sequence of top-level constituents"),
    ProbingTask("BigramShift", "bigram_shift.txt", "BShift", "two adjacent words inverted or not"),
    ProbingTask("Tense", "past_present.txt", "Tense", "tense of the main verb"),
    ProbingTask("SubjNumber", "subj_number.txt", "SubjNum", "number of the main clause's subject"),
    ProbingTask("ObjNumber", "obj_number.txt", "ObjNum", "number of the main clause's direct object"),
    ProbingTask("OddManOut", "odd_man_out.txt", "SOMO", "a noun or verb replaced by another or not"),
    ProbingTask("CoordinationInversion", "coordination_inversion.txt", "CoordInv", "two coordinated clauses inverted or not"),
)
TASK_NAMES = tuple(task.name for task in TASKS)

_ALIASES = {}
for _task in TASKS:
    for _alias in (_task.name, _task.paper, _task.file, _task.file[: -len(".txt")]):
        _ALIASES[_alias.lower()] = _task


def get_task(name: str) -> ProbingTask:
    """A task by SentEval name, paper name or file name, case-insensitively (``Length``, ``SentLen``, ``sentence_length``)."""
    task = _ALIASES.get(name.strip().lower())
    if task is None:
        raise UnknownTaskError(f"unknown probing task {name!r}; known: {', '.join(TASK_NAMES)}")
    return task


def resolve_tasks(names: list[str] | tuple[str, ...] | None) -> list[ProbingTask]:
    """The tasks named (all ten when ``names`` is empty), in the order given, without repeats."""
    if not names:
        return list(TASKS)
    tasks: list[ProbingTask] = []
    for name in names:
        for part in name.split(","):
            if part.strip():
                task = get_task(part)
                if task not in tasks:
                    tasks.append(task)
    return tasks


@dataclass
class ProbingSplit:
    sentences: list[list[str]] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class ProbingData:
    """One task's instances per split (``tr``, ``va``, ``te``) and its label set in SentEval's order."""

    task: str
    splits: dict[str, ProbingSplit]
    source: str = ""

    @property
    def label_names(self) -> list[str]:
        """Training labels in sorted string order: SentEval's label -> integer mapping."""
        return sorted(set(self.splits["tr"].labels))

    def label_ids(self, split: str) -> list[int]:
        index = {label: i for i, label in enumerate(self.label_names)}
        return [index[label] for label in self.splits[split].labels]

    def senteval_order(self, split: str) -> list[int]:
        """The rows of a split in the order SentEval fits them (``PROBINGEval.run`` sorts each split by sentence
        length, then label, stably). Where a classifier stops short of convergence, as scikit-learn's often does
        after 100 iterations, its answer depends on the order of the training rows."""
        sentences, labels = self.splits[split].sentences, self.label_ids(split)
        return sorted(range(len(labels)), key=lambda i: (len(sentences[i]), labels[i]))

    def all_sentences(self) -> list[list[str]]:
        return [s for split in SPLITS for s in self.splits[split].sentences]

    def counts(self) -> dict[str, int]:
        return {split: len(self.splits[split]) for split in SPLITS}


def task_file(task_path: str | Path, task: ProbingTask) -> Path:
    """Where ``task``'s file lies under ``task_path``: the folder itself or its ``probing/`` subfolder (SentEval's
    ``data/`` layout), plain or gzipped."""
    root = Path(task_path)
    for folder in (root, root / "probing"):
        for name in (task.file, task.file + ".gz"):
            if (folder / name).is_file():
                return folder / name
    raise ProbingError(
        f"no file for probing task {task.name}: expected {root / task.file} (or {root / 'probing' / task.file}, "
        f"optionally .gz); build the sets with probing/build_tasks.py or point --task_path at SentEval's data/probing")


def read_probing_file(path: str | Path, task: str = "") -> ProbingData:
    """Read a SentEval-format probing file; a malformed line is a ``DataFormatError`` naming file and line.

    Every label of the dev and test splits must occur in the training split (SentEval maps labels from it).
    """
    splits = {split: ProbingSplit() for split in SPLITS}
    label_lines: dict[tuple[str, str], int] = {}
    with open_text(path) as lines:
        for number, line in enumerate(lines, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) < 3:
                raise DataFormatError(path, number, f"expected '<tr|va|te>\\t<label>\\t<sentence>', found {len(fields)} tab-separated field(s): {line[:80]!r}")
            split, label, sentence = fields[0].strip(), fields[1].strip(), fields[-1].split()
            if split not in splits:
                raise DataFormatError(path, number, f"unknown split {fields[0]!r} (expected tr, va or te)")
            if not label:
                raise DataFormatError(path, number, "empty label")
            if not sentence:
                raise DataFormatError(path, number, "empty sentence")
            splits[split].sentences.append(sentence)
            splits[split].labels.append(label)
            label_lines.setdefault((split, label), number)
    for split in SPLITS:
        if not splits[split]:
            raise DataFormatError(path, None, f"no instances of split {split!r} ({SPLIT_NAMES[split]})")
    train_labels = set(splits["tr"].labels)
    for (split, label), number in sorted(label_lines.items(), key=lambda item: item[1]):
        if split != "tr" and label not in train_labels:
            raise DataFormatError(path, number, f"label {label!r} of split {split!r} never occurs in the training split")
    return ProbingData(task=task or Path(path).name, splits=splits, source=str(path))


def load_task(task_path: str | Path, task: ProbingTask | str) -> ProbingData:
    task = get_task(task) if isinstance(task, str) else task
    data = read_probing_file(task_file(task_path, task), task.name)
    return data


def write_probing_file(path: str | Path, instances: dict[str, list[tuple[str, list[str]]]]) -> None:
    """Write ``{split: [(label, tokens), ...]}`` in SentEval's format, grouped tr, va, te in the given order."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        for split in SPLITS:
            for label, tokens in instances.get(split, []):
                if any(not t or any(c.isspace() for c in t) for t in tokens) or not tokens:
                    raise ValueError(f"{path.name}: token with whitespace or empty in {tokens!r}")
                if "\t" in label or not label:
                    raise ValueError(f"{path.name}: bad label {label!r}")
                out.write(f"{split}\t{label}\t{' '.join(tokens)}\n")
    tmp.replace(path)
