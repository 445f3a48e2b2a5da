"""Probe every layer of an encoder (and the baselines) on the probing tasks, and report the table.

Results are ``{row: {task: {devacc, acc, ndev, ntest, ...}}}`` where a row is a layer of the model (``embedder``,
``level_1``, ...), a baseline (``majority``, ``random``, ``glove``) or a layer of the untrained model
(``untrained:level_1``). ``write_report`` writes them as JSON, a Markdown table and a PNG figure.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from hmtl.probing.errors import UnknownLayerError
from hmtl.probing.extract import EncoderFn, encode_dataset, encoder_layers
from hmtl.probing.probe import ProbeConfig, majority_baseline, probe_task
from hmtl.probing.tasks import ProbingData, ProbingTask, load_task

Results = dict[str, dict[str, dict]]
BACKENDS = ("hmtl", "senteval")


@dataclass
class Encoder:
    """An encoder to probe: its rows are ``prefix + layer`` for each of ``layers``."""

    fn: EncoderFn
    layers: list[str]
    model_id: str
    prefix: str = ""
    kind: str = "model"  # model | untrained | baseline
    rows: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rows = {layer: f"{self.prefix}{layer}" for layer in self.layers}


def check_layers(encoder_fn: EncoderFn, layers: list[str] | None) -> list[str]:
    """The requested layers (all of the encoder's when None), after checking that the encoder has them."""
    available = encoder_layers(encoder_fn)
    if not layers:
        return available
    requested = [part.strip() for layer in layers for part in layer.split(",") if part.strip()]
    unknown = [layer for layer in requested if layer not in available]
    if unknown:
        raise UnknownLayerError(f"unknown layer(s) {', '.join(unknown)}; the model has: {', '.join(available)}")
    return list(dict.fromkeys(requested))


def load_tasks(task_path: str | Path, tasks: list[ProbingTask]) -> list[ProbingData]:
    """Read every task's file first, so a missing or malformed one stops the run before any encoding."""
    return [load_task(task_path, task) for task in tasks]


def _groups(datasets: list[ProbingData], max_sentences: int) -> list[list[ProbingData]]:
    """Tasks encoded together: all of them when their sentences fit in ``max_sentences`` (the UD-built tasks share
    most sentences, so each distinct sentence is encoded once), else one task at a time (SentEval's files: 120k
    sentences each)."""
    if sum(sum(d.counts().values()) for d in datasets) <= max_sentences:
        return [datasets]
    return [[d] for d in datasets]


def distinct_sentences(datasets: list[ProbingData]) -> list[list[str]]:
    """Each distinct sentence of the datasets once, in order of first occurrence: what both backends encode (so
    one HDF5 cache group, keyed by these sentences, serves both)."""
    index: dict[tuple[str, ...], None] = {}
    for data in datasets:
        for sentence in data.all_sentences():
            index.setdefault(tuple(sentence), None)
    return [list(sentence) for sentence in index]


def probe_encoders(encoders: list[Encoder], datasets: list[ProbingData], pooling: str = "mean",
                   config: ProbeConfig | None = None, batch_size: int = 64, cache_path: str | Path | None = None,
                   majority: bool = True, progress: bool = True, log: Callable[[str], None] | None = print,
                   max_shared_sentences: int = 250_000) -> Results:
    """SentEval's protocol with this package's classifier (``--backend hmtl``)."""
    config = config or ProbeConfig()
    results: Results = {}
    if majority:
        results["majority"] = {data.task: majority_baseline(data) for data in datasets}
    for group in _groups(datasets, max_shared_sentences):
        sentences = distinct_sentences(group)
        index = {tuple(sentence): i for i, sentence in enumerate(sentences)}
        name = group[0].task if len(group) == 1 else f"{len(group)} tasks"
        for encoder in encoders:
            started = time.perf_counter()
            vectors = encode_dataset(encoder.fn, sentences, encoder.layers, pooling, batch_size, cache_path,
                                     encoder.model_id, progress, desc=f"{name} {encoder.prefix or encoder.kind}")
            if log:
                log(f"  encoded {len(sentences)} distinct sentences of {name} with {encoder.prefix or encoder.kind} "
                    f"{'/'.join(encoder.layers)} in {time.perf_counter() - started:.1f}s")
            for data in group:
                rows = torch.tensor([index[tuple(s)] for s in data.all_sentences()], dtype=torch.long)
                for layer in encoder.layers:
                    started = time.perf_counter()
                    result = probe_task(vectors[layer][rows], data, config)
                    result["seconds"] = round(time.perf_counter() - started, 2)
                    results.setdefault(encoder.rows[layer], {})[data.task] = result
                    if log:
                        log(f"  {data.task:<22} {encoder.rows[layer]:<24} dev {result['devacc']:6.2f}  "
                            f"test {result['acc']:6.2f}  ({result['seconds']:.1f}s)")
    order = [data.task for data in datasets]
    return {row: {task: by_task[task] for task in order if task in by_task} for row, by_task in results.items()}


def probe_with_senteval(encoders: list[Encoder], datasets: list[ProbingData], tasks: list[ProbingTask],
                        task_path: str | Path, pooling: str = "mean", classifier: str = "logreg", seed: int = 1111,
                        batch_size: int = 64, cache_path: str | Path | None = None, majority: bool = True,
                        progress: bool = True, engine=None, log: Callable[[str], None] | None = print,
                        max_shared_sentences: int = 250_000) -> Results:
    """The same rows through ``senteval.engine.SE`` (``--backend senteval``). The vectors come from the same
    encoding (and HDF5 cache group) as ``probe_encoders``: the distinct sentences of the tasks encoded together, so
    a run of either backend serves the other, and SentEval's per-task ``prepare`` only looks them up."""
    from hmtl.probing.senteval_bridge import import_senteval, run_senteval

    engine = engine or import_senteval()
    results: Results = {}
    if majority:
        results["majority"] = {data.task: majority_baseline(data) for data in datasets}
    by_name = {task.name: task for task in tasks}
    for group in _groups(datasets, max_shared_sentences):
        sentences = distinct_sentences(group)
        for encoder in encoders:
            by_layer = run_senteval(encoder.fn, encoder.layers, [by_name[data.task] for data in group], task_path,
                                    pooling, classifier, seed, batch_size, cache_path, encoder.model_id, progress,
                                    engine=engine, log=log, sentences=sentences)
            for layer, row in by_layer.items():
                results.setdefault(encoder.rows[layer], {}).update(row)
    order = [data.task for data in datasets]
    return {row: {task: by_task[task] for task in order if task in by_task} for row, by_task in results.items()}


# ------------------------------------------------------------------------------------------------------ reporting


def _rows_in_order(results: Results, row_order: list[str] | None) -> list[str]:
    rows = [row for row in (row_order or []) if row in results]
    return rows + [row for row in results if row not in rows]


def format_table(results: Results, tasks: list[ProbingTask], row_order: list[str] | None = None,
                 metric: str = "acc") -> str:
    """Rows (layers, baselines) x tasks, test accuracy (``metric``), in fixed-width text."""
    rows = _rows_in_order(results, row_order)
    width = max([len(r) for r in rows] + [5])
    header = f"{'':<{width}} " + " ".join(f"{t.paper:>8}" for t in tasks)
    lines = [header, "-" * len(header)]
    for row in rows:
        cells = [results[row].get(t.name, {}).get(metric) for t in tasks]
        lines.append(f"{row:<{width}} " + " ".join(f"{c:>8.2f}" if c is not None else f"{'-':>8}" for c in cells))
    return "\n".join(lines)


def markdown_table(results: Results, tasks: list[ProbingTask], row_order: list[str] | None = None,
                   metric: str = "acc") -> str:
    rows = _rows_in_order(results, row_order)
    lines = ["| layer | " + " | ".join(t.paper for t in tasks) + " |",
             "|---|" + "---:|" * len(tasks)]
    for row in rows:
        cells = [results[row].get(t.name, {}).get(metric) for t in tasks]
        lines.append(f"| {row} | " + " | ".join(f"{c:.2f}" if c is not None else "-" for c in cells) + " |")
    return "\n".join(lines)


def plot_results(path: str | Path, results: Results, tasks: list[ProbingTask], layers: list[str],
                 baselines: list[str], untrained_prefix: str = "untrained:", title: str = "") -> Path:
    """One panel per task: test accuracy per layer (and per untrained layer), baselines as horizontal lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(5, len(tasks))
    rows = (len(tasks) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.8 * rows), squeeze=False)
    styles = {"majority": ("0.4", ":"), "random": ("tab:purple", "--"), "glove": ("tab:green", "-.")}
    x = list(range(len(layers)))
    for panel, task in zip(axes.flat, tasks):
        trained = [results.get(layer, {}).get(task.name, {}).get("acc") for layer in layers]
        if layers and any(v is not None for v in trained):
            panel.plot(x, [v if v is not None else float("nan") for v in trained], "o-", color="tab:blue",
                       label="trained")
        untrained = [results.get(untrained_prefix + layer, {}).get(task.name, {}).get("acc") for layer in layers]
        if any(v is not None for v in untrained):
            panel.plot(x, [v if v is not None else float("nan") for v in untrained], "s--", color="tab:orange",
                       label="untrained", alpha=0.8)
        for baseline in baselines:
            value = results.get(baseline, {}).get(task.name, {}).get("acc")
            if value is not None:
                color, style = styles.get(baseline, ("0.6", "--"))
                panel.axhline(value, color=color, linestyle=style, linewidth=1, label=baseline)
        panel.set_title(f"{task.paper} ({task.name})", fontsize=9)
        panel.set_xticks(x)
        panel.set_xlim(-0.4, max(len(layers) - 0.6, 0.4))
        panel.set_xticklabels(layers, rotation=45, ha="right", fontsize=7)
        panel.tick_params(axis="y", labelsize=7)
        panel.grid(alpha=0.3)
    for panel in list(axes.flat)[len(tasks):]:
        panel.axis("off")
    handles = {}
    for panel in axes.flat:
        for handle, label in zip(*panel.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    if handles:
        figure.legend(list(handles.values()), list(handles), loc="lower center", ncol=len(handles), fontsize=8,
                      frameon=False)
    figure.supylabel("test accuracy (%)", fontsize=9)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout(rect=(0, 0.06, 1, 0.97 if title else 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def write_report(output_dir: str | Path, stem: str, results: Results, tasks: list[ProbingTask], layers: list[str],
                 baselines: list[str], settings: dict, plot: bool = True) -> dict[str, Path]:
    """``<stem>.json`` (settings + results), ``<stem>.md`` (the table) and ``<stem>.png`` in ``output_dir``."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    untrained = [row for row in results if row.startswith("untrained:")]
    order = layers + untrained + baselines
    paths = {"json": output_dir / f"{stem}.json", "markdown": output_dir / f"{stem}.md"}
    payload = {"settings": settings, "tasks": [t.name for t in tasks], "layers": layers, "baselines": baselines,
               "results": {row: results[row] for row in _rows_in_order(results, order)}}
    paths["json"].write_text(json.dumps(payload, indent=1) + "\n")
    described = ", ".join(f"{k}={v}" for k, v in settings.items() if k in ("backend", "protocol", "pooling", "classifier", "task_path"))
    paths["markdown"].write_text(f"# Probing: test accuracy (%)\n\n{described}\n\n"
                                 + markdown_table(results, tasks, order) + "\n\n"
                                 + "Dev accuracy (%), used to pick the classifier's L2 strength:\n\n"
                                 + markdown_table(results, tasks, order, metric="devacc") + "\n")
    if plot:
        paths["png"] = plot_results(output_dir / f"{stem}.png", results, tasks, layers, baselines,
                                    title=f"probing ({described})")
    return paths

