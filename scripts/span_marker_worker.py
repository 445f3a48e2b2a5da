"""SpanMarker's half of scripts/bench_span_marker.py: trains a SpanMarker model (tomaarsen/SpanMarkerNER) on the
sentences the benchmark hands it, then predicts the test sentences and writes the predictions as word spans, with
its timings. It runs inside .venv-spanmarker (bash scripts/install_span_marker.sh), never in hmtl's environment:
span-marker needs transformers < 5. The benchmark starts it; by hand:

    .venv-spanmarker/bin/python scripts/span_marker_worker.py --data DATA.json --encoder MODEL_FOLDER \\
        --output_dir OUT --epochs 1 --threads 1

DATA.json (written by the benchmark from hmtl's own reading of the corpus, so both systems see the same sentences
and gold): {"types": ["LOC", ...], "train": [{"tokens": [...], "spans": [[start, end, type], ...]}, ...],
"validation": [...], "test": [...]}, spans in words, end-exclusive. OUT/result.json: the predicted test spans in the
same form, seconds per epoch (training alone, and with the epoch's validation and checkpoint, as hmtl counts an
epoch), training words per second, test sentences per second, SpanMarker's own validation F1 per epoch, peak RSS.

How SpanMarker users fine-tune it (SpanMarker's defaults and its published training scripts, MultiNERD's among them):
model_max_length 256 subwords, marker_max_length 128, entity_max_length 8 words, AdamW at 5e-5, batch 32,
gradient accumulation 2, linear decay after a 10% warm-up, weight decay 0.01, the model of the best validation F1
kept at the end (evaluated and saved each epoch, as hmtl does).

Run it as a script (python scripts/span_marker_worker.py), not with python -c from the repository root: there the
repository's evaluate.py would shadow the `evaluate` package SpanMarker imports.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="the benchmark's sentences (JSON, see above)")
    parser.add_argument("--encoder", required=True, help="the encoder's local folder (hmtl's minilm)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch's CPU threads")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--accumulation_steps", type=int, default=2)
    parser.add_argument("--learning_rate", type=float, default=5e-5)
    parser.add_argument("--weight_decay", type=float, default=0.01)
    parser.add_argument("--warmup_ratio", type=float, default=0.1)
    parser.add_argument("--entity_max_length", type=int, default=8)
    parser.add_argument("--model_max_length", type=int, default=256)
    parser.add_argument("--marker_max_length", type=int, default=128)
    parser.add_argument("--predict_batch_size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (TrainingArguments.bf16)")
    return parser.parse_args(argv)


def iob2_labels(types: list[str]) -> list[str]:
    """SpanMarker's label list for IOB2 tags: O, then B-/I- of each type."""
    return ["O"] + [f"{prefix}-{t}" for t in types for prefix in ("B", "I")]


def iob2_tags(length: int, spans: list[list], label_ids: dict[str, int]) -> list[int]:
    """The tag ids of a sentence's (non-overlapping) spans; SpanMarker turns them back into the same spans."""
    tags = [label_ids["O"]] * length
    for start, end, label in spans:
        tags[start] = label_ids[f"B-{label}"]
        for i in range(start + 1, end):
            tags[i] = label_ids[f"I-{label}"]
    return tags


def offline_seqeval() -> None:
    """SpanMarker scores each validation with ``evaluate.load("seqeval")``, whose metric script is fetched from the
    Hugging Face hub: offline that fails. This gives span_marker.evaluation a stand-in ``evaluate`` whose ``load``
    returns the same computation over the installed seqeval package (its default, conlleval-style matching). It
    only picks SpanMarker's best epoch; the benchmark scores the test predictions itself."""
    import span_marker.evaluation
    from seqeval.metrics import accuracy_score, f1_score, precision_score, recall_score

    class Seqeval:
        def __init__(self) -> None:
            self.predictions: list[list[str]] = []
            self.references: list[list[str]] = []

        def add(self, prediction: list[str], reference: list[str]) -> None:
            self.predictions.append(list(prediction))
            self.references.append(list(reference))

        def compute(self) -> dict[str, float]:
            gold, found = self.references, self.predictions
            return {"overall_precision": float(precision_score(gold, found, zero_division=0)),
                    "overall_recall": float(recall_score(gold, found, zero_division=0)),
                    "overall_f1": float(f1_score(gold, found, zero_division=0)),
                    "overall_accuracy": float(accuracy_score(gold, found))}

    class Evaluate:
        @staticmethod
        def load(name: str, *_, **__) -> Seqeval:
            if name != "seqeval":
                raise ValueError(f"only seqeval is available offline, not {name!r}")
            return Seqeval()

    span_marker.evaluation.evaluate = Evaluate


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the encoder is a local folder; nothing is downloaded
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    from datasets import Dataset
    from span_marker import SpanMarkerModel, Trainer
    from transformers import TrainerCallback, TrainingArguments

    offline_seqeval()

    data = json.loads(Path(args.data).read_text())
    labels = iob2_labels(data["types"])
    label_ids = {label: i for i, label in enumerate(labels)}

    def dataset(split: str) -> Dataset:
        sentences = data[split]
        return Dataset.from_dict({"tokens": [s["tokens"] for s in sentences],
                                  "ner_tags": [iob2_tags(len(s["tokens"]), s["spans"], label_ids) for s in sentences]})

    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = SpanMarkerModel.from_pretrained(args.encoder, labels=labels, model_max_length=args.model_max_length,
                                            marker_max_length=args.marker_max_length,
                                            entity_max_length=args.entity_max_length, local_files_only=True)
    cuda = torch.cuda.is_available()
    training_args = TrainingArguments(
        output_dir=str(out / "checkpoints"),
        learning_rate=args.learning_rate,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.batch_size,
        gradient_accumulation_steps=args.accumulation_steps,
        num_train_epochs=args.epochs,
        weight_decay=args.weight_decay,
        warmup_ratio=args.warmup_ratio,
        lr_scheduler_type="linear",
        bf16=args.bf16,
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=1,
        load_best_model_at_end=True,
        metric_for_best_model="overall_f1",
        greater_is_better=True,
        logging_steps=50,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        seed=args.seed,
        use_cpu=not cuda,
    )

    class Clock(TrainerCallback):
        """Per epoch: its start, the end of its training steps, and the end of its validation and checkpoint."""

        def __init__(self) -> None:
            self.epochs: list[dict] = []

        def on_epoch_begin(self, *_, **__):
            self.epochs.append({"begin": time.perf_counter()})

        def on_epoch_end(self, *_, **__):
            self.epochs[-1]["trained"] = time.perf_counter()

        def on_evaluate(self, _args, _state, _control, metrics=None, **__):
            if self.epochs:
                self.epochs[-1]["validation_f1"] = 100 * (metrics or {}).get("eval_overall_f1", float("nan"))
                self.epochs[-1]["done"] = time.perf_counter()

        def on_save(self, *_, **__):
            if self.epochs:
                self.epochs[-1]["done"] = time.perf_counter()

    clock = Clock()
    trainer = Trainer(model=model, args=training_args, train_dataset=dataset("train"),
                      eval_dataset=dataset("validation"), callbacks=[clock])
    started = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - started

    test = data["test"]
    model = trainer.model  # the best epoch's (load_best_model_at_end)
    if cuda:
        model = model.cuda()
    predict_started = time.perf_counter()
    found = model.predict([s["tokens"] for s in test], batch_size=args.predict_batch_size)
    predict_seconds = time.perf_counter() - predict_started
    if len(test) == 1:  # SpanMarker returns one sentence's list unwrapped
        found = [found]
    predictions = [[[e["word_start_index"], e["word_end_index"], e["label"]] for e in entities] for entities in found]

    train_words = sum(len(s["tokens"]) for s in data["train"])
    epochs = [{"epoch": i + 1,
               "train_seconds": round(e["trained"] - e["begin"], 2),
               "seconds": round(e.get("done", e["trained"]) - e["begin"], 2),
               "validation_f1": round(e.get("validation_f1", float("nan")), 2)} for i, e in enumerate(clock.epochs)]
    trained = sum(e["trained"] - e["begin"] for e in clock.epochs)
    result = {
        "system": "span_marker",
        "versions": versions(),
        "threads": torch.get_num_threads(),
        "device": "cuda" if cuda else "cpu",
        "epochs": epochs,
        "total_train_seconds": round(train_seconds, 2),
        "train_sentences": len(data["train"]),
        "train_words": train_words,
        "train_words_per_second": round(train_words * len(clock.epochs) / trained, 1) if trained else None,
        "test_sentences": len(test),
        "predict_seconds": round(predict_seconds, 2),
        "predict_sentences_per_second": round(len(test) / predict_seconds, 2) if predict_seconds else None,
        "peak_rss_mb_self": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "predictions": predictions,
    }
    (out / "result.json").write_text(json.dumps(result))
    print(f"span_marker: {len(clock.epochs)} epoch(s), {train_seconds:.1f} s training, {len(test)} test sentences "
          f"in {predict_seconds:.1f} s", file=sys.stderr)


def versions() -> dict[str, str]:
    import datasets
    import span_marker
    import torch
    import transformers

    return {"span_marker": span_marker.__version__, "transformers": transformers.__version__,
            "torch": torch.__version__, "datasets": datasets.__version__}


if __name__ == "__main__":
    main()
