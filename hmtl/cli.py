"""Command lines behind train.py and evaluate.py; errors the user can fix are printed as one line, no traceback."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from hmtl.errors import HmtlError


def _run(main) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        main()
    except HmtlError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def format_table(metrics: dict[str, float]) -> str:
    width = max((len(k) for k in metrics), default=10)
    return "\n".join(f"{key:<{width}}  {value:8.2f}" for key, value in sorted(metrics.items()))


def train_main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train a hierarchical multi-task model.")
    parser.add_argument("--config_file_path", required=True, help="JSON experiment config")
    parser.add_argument("--serialization_dir", required=True, help="where checkpoints, metrics and logs go")
    parser.add_argument("--overrides", default=None, help='JSON merged over the config, e.g. \'{"trainer": {"num_epochs": 1}}\'')
    parser.add_argument("--recover", action="store_true", help="resume an interrupted run from its last checkpoint")
    parser.add_argument("--force", action="store_true", help="overwrite an existing serialization directory")
    args = parser.parse_args(argv)

    def main() -> None:
        from hmtl.config import load_config
        from hmtl.training.trainer import Trainer

        if args.recover:
            config = load_config(Path(args.serialization_dir) / "config.json", args.overrides, expand=False)
        else:
            config = load_config(args.config_file_path, args.overrides)
        test = Trainer(config, args.serialization_dir, recover=args.recover, force=args.force).train()
        print(format_table(test))

    _run(main)


def evaluate_main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Evaluate the best model of a training run.")
    parser.add_argument("--serialization_dir", required=True)
    parser.add_argument("--evaluation_data_file", default=None, help="evaluate on this file instead of the test splits")
    parser.add_argument("--dataset", default=None, help="which configured dataset's reader and heads the file uses")
    parser.add_argument("--output_file", default=None, help="JSON output (default: <serialization_dir>/evaluation.json)")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--overrides", default=None,
                        help='JSON merged over the model\'s config for inference, e.g. \'{"embedder": {"transformer": {"context": 64}}}\'')
    args = parser.parse_args(argv)

    def main() -> None:
        from hmtl.data.loading import read_split
        from hmtl.model import load_model
        from hmtl.training.evaluation import evaluate

        model = load_model(args.serialization_dir, args.overrides)
        config = model.config
        if args.evaluation_data_file:
            dataset = args.dataset or next(iter(config.tasks[0].datasets))
            if dataset not in config.data:
                raise HmtlError(f"--dataset: unknown dataset {dataset!r}; the model knows {sorted(config.data)}")
            dataset_config = config.data[dataset].model_copy(update={"test": args.evaluation_data_file, "max_documents": None})
            documents = {dataset: read_split(dataset, dataset_config, "test")}
        else:
            documents = {d: read_split(d, config.data[d], "test") for t in config.tasks for d in t.datasets}
        instances = model.task_instances(documents)
        if not instances:
            raise HmtlError("nothing to evaluate: no task has test data")
        metrics = evaluate(model, instances, args.batch_size, autocast=config.trainer.bf16)  # as validation ran
        print(format_table(metrics))
        output = Path(args.output_file or Path(args.serialization_dir) / "evaluation.json")
        output.write_text(json.dumps(metrics, indent=2))
        print(f"written to {output}")

    _run(main)


def predict_main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Predict every task of a trained model on raw text.")
    parser.add_argument("--serialization_dir", required=True)
    parser.add_argument("--input_file", required=True, help="UTF-8 text, one document per line (- for stdin)")
    parser.add_argument("--output_file", default="-", help="JSON lines, one object per document (- for stdout)")
    args = parser.parse_args(argv)

    def main() -> None:
        from tqdm import tqdm

        from hmtl.predict import Predictor

        predictor = Predictor.from_serialization_dir(args.serialization_dir)
        source = sys.stdin if args.input_file == "-" else open(args.input_file, encoding="utf-8")
        lines = [line for line in source.read().splitlines() if line.strip()]
        results = [predictor.predict(line, doc_id=str(i)) for i, line in enumerate(tqdm(lines, desc="predicting", disable=None))]
        text = "".join(json.dumps(result) + "\n" for result in results)
        if args.output_file == "-":
            sys.stdout.write(text)
        else:
            Path(args.output_file).write_text(text)

    _run(main)
