"""Command lines behind train.py and evaluate.py; errors the user can fix are printed as one line, no traceback."""
from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import shlex
import sys
from pathlib import Path

from pydantic import ValidationError

from hmtl.commands import run_command
from hmtl.errors import HmtlError
from hmtl.training import distributed


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
    parser.add_argument("--init_from", default=None,
                        help="start from a trained run's weights wherever name and shape match (fine-tuning)")
    args = parser.parse_args(argv)

    def main() -> None:
        from hmtl.checks import load_config
        from hmtl.training.trainer import Trainer

        if args.recover and args.init_from:
            raise HmtlError("--init_from: a resumed run continues from its own checkpoint; drop --init_from")
        if args.recover:
            config = load_config(Path(args.serialization_dir) / "config.json", args.overrides, expand=False)
        else:
            config = load_config(args.config_file_path, args.overrides)
        try:  # under torchrun (torchrun --nproc_per_node N train.py ...) every rank runs this; rank 0 reports
            test = Trainer(config, args.serialization_dir, recover=args.recover, force=args.force, init_from=args.init_from).train()
        except KeyboardInterrupt:  # Ctrl+C: the lock is let go and MLflow told KILLED on the way here
            if distributed.rank() == 0:
                print(interrupted(args), file=sys.stderr)
            sys.exit(130)  # 128 + SIGINT, as a shell reports a process Ctrl+C ended
        finally:
            distributed.shutdown()
        if distributed.rank() > 0:
            return
        summary = json.loads((Path(args.serialization_dir) / "metrics.json").read_text())
        print(f"test metrics of the best model (epoch {summary['best_epoch']} of {len(summary['epochs'])}, "
              f"{Path(args.serialization_dir) / 'best'}):")
        print(format_table(test))

    run_command(main)


def interrupted(args: argparse.Namespace) -> str:
    """What a Ctrl+C during training leaves, in one line: where the last checkpoint is and the command that resumes it."""
    from hmtl.training.trainer import STATE_FILE

    out = Path(args.serialization_dir)
    if not (out / "last" / STATE_FILE).exists():
        return (f"interrupted before the first checkpoint: nothing in {out} to resume; run the same command with "
                "--force to start over")
    program = sys.argv[0].split()  # train.py, or "hmtl train"
    if distributed.under_torchrun():
        program = ["torchrun", "--nproc_per_node", os.environ["WORLD_SIZE"], *program]
    elif sys.argv[0].endswith(".py"):
        program = ["python", *program]
    command = shlex.join([*program, "--config_file_path", args.config_file_path, "--serialization_dir", str(out),
                          "--recover", *(["--overrides", args.overrides] if args.overrides else [])])
    return f"interrupted: the last checkpoint is {out / 'last'}; resume with: {command}"


def evaluate_main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Evaluate the best model of a training run.")
    parser.add_argument("--serialization_dir", required=True)
    parser.add_argument("--evaluation_data_file", default=None, help="evaluate on this file instead of the test splits")
    parser.add_argument("--dataset", default=None, help="which configured dataset's reader and heads the file uses")
    parser.add_argument("--namespace", default=None,
                        help="score only this head (<dataset>__<task>, e.g. conll03__ner), e.g. on another corpus")
    parser.add_argument("--reader", default=None, help="read --evaluation_data_file with this reader (default: the dataset's)")
    parser.add_argument("--reader_options", default=None, help="JSON options of --reader")
    parser.add_argument("--label_map", default=None,
                        help='JSON renaming (or, with null, dropping) the file\'s entity types, e.g. \'{"person": "PER", "event": null}\'')
    parser.add_argument("--keep_labels", default=None, help="comma-separated entity types to keep (after --label_map)")
    parser.add_argument("--output_file", default=None, help="JSON output (default: <serialization_dir>/evaluation.json)")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--device", default="auto", help="auto (a GPU when there is one, else the CPU), cpu, cuda or cuda:N")
    parser.add_argument("--overrides", default=None,
                        help='JSON merged over the model\'s config for inference, e.g. \'{"embedder": {"transformer": {"context": 64}}}\'')
    parser.add_argument("--tune", action="store_true",
                        help="first let the heads that tune decision settings choose them on the validation split, as "
                             "training does at its end (a classifier's options.tune_thresholds; for a model trained "
                             "without it, turn it on with --overrides); the saved model is not changed")
    args = parser.parse_args(argv)

    def main() -> None:
        from hmtl.data.loading import label_mapping, read_split
        from hmtl.model import load_model
        from hmtl.training.evaluation import evaluate, log_unreachable, tune, unknown_gold_types

        if args.batch_size < 1:
            raise HmtlError(f"--batch_size: expected a positive number of instances, got {args.batch_size}")
        output = Path(args.output_file or Path(args.serialization_dir) / "evaluation.json")
        if args.output_file and not output.parent.is_dir():
            raise HmtlError(f"--output_file: folder {output.parent} does not exist")
        model = load_model(args.serialization_dir, args.overrides, args.device)
        config = model.config
        task_name = None
        if args.namespace:
            from hmtl.config import split_namespace

            model.check_namespaces([args.namespace], "--namespace")
            dataset, task_name = split_namespace(args.namespace)
        else:
            dataset = args.dataset or next(iter(config.tasks[0].datasets))
        if dataset not in config.data:
            raise HmtlError(f"--dataset: unknown dataset {dataset!r}; the model knows {sorted(config.data)}")
        if args.evaluation_data_file:
            reader_options = _json_option(args.reader_options, "--reader_options")
            if args.reader:
                from hmtl.checks import check_reader

                check_reader(args.reader, reader_options or {}, "--reader")
            raw = {**config.data[dataset].model_dump(), "validation_fraction": None, "max_documents": None,
                   "test": {"path": args.evaluation_data_file, "reader": args.reader,
                            "reader_options": reader_options if reader_options is not None or not args.reader else {}}}
            if args.label_map is not None or args.keep_labels is not None:
                raw["label_map"] = _json_option(args.label_map, "--label_map") or {}
                raw["keep_labels"] = None if args.keep_labels is None else [t for t in args.keep_labels.split(",") if t]
            try:
                dataset_configs = {dataset: type(config.data[dataset]).model_validate(raw)}
            except ValidationError as error:
                raise HmtlError(f"--label_map / --keep_labels / --reader_options: {error.errors()[0]['msg']}") from None
            documents = {dataset: read_split(dataset, dataset_configs[dataset], "test", option="--")}
        else:
            dataset_configs = {d: config.data[d] for t in config.tasks for d in t.datasets if not task_name or d == dataset}
            documents = {d: read_split(d, dataset_config, "test") for d, dataset_config in dataset_configs.items()}
        if args.tune:
            validation = {d: read_split(d, config.data[d], "validation") for d in dataset_configs}
            chosen = tune(model, model.task_instances(validation), args.batch_size)
            if not chosen:
                raise HmtlError("--tune: nothing was tuned: no head of this model tunes decision settings (set a "
                                "classifier's options.tune_thresholds with --overrides), or no validation split")
            print(f"chosen on the validation split: {json.dumps(chosen)}")
        instances = model.task_instances(documents)
        if task_name:
            instances = {task_name: [i for i in instances.get(task_name, []) if i.namespace == args.namespace]}
        instances = {name: found for name, found in instances.items() if found}
        if not instances:
            raise HmtlError("nothing to evaluate: no task has test data")
        log_unreachable(model, instances, args.evaluation_data_file or "test")
        # the predictions go through the maps the gold was read with: a type left out of the gold is left out of them
        relabel = {ns: functools.partial(label_mapping, dataset_configs[d], predicted=True)
                   for task in model.tasks.values() for d, ns in zip(task.datasets, task.namespaces)
                   if d in dataset_configs and (dataset_configs[d].label_map or dataset_configs[d].keep_labels)}
        unknown = unknown_gold_types(model, documents)
        for namespace, types in unknown.items():
            if task_name and namespace != args.namespace:
                continue
            print(f"warning: {namespace} never predicts the gold types "
                  f"{', '.join(f'{t} ({n})' for t, n in sorted(types.items()))}: they count as misses", file=sys.stderr)
        metrics = evaluate(model, instances, args.batch_size, relabel=relabel)  # in the model's precision, as validation ran
        print(format_table(metrics))
        output.write_text(json.dumps(metrics, indent=2))
        print(f"written to {output}")

    run_command(main)


def _json_option(value: str | None, option: str):
    if value is None:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as error:
        raise HmtlError(f"{option}: not valid JSON ({error.msg})") from None


def predict_main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Predict every task of a trained model on raw text.")
    parser.add_argument("--serialization_dir", required=True)
    parser.add_argument("--input_file", required=True, help="UTF-8 text, one document per line (- for stdin)")
    parser.add_argument("--output_file", default="-", help="JSON lines, one object per document (- for stdout)")
    parser.add_argument("--namespaces", default=None,
                        help="comma-separated heads to run, e.g. ncbi__ner,conll03__ner, or all (default: each task's first)")
    parser.add_argument("--keep_labels", default=None,
                        help="comma-separated entity types to keep in the output, e.g. PER,LOC (default: all)")
    parser.add_argument("--batch_size", type=int, default=32, help="sentences per batch, across documents")
    parser.add_argument("--language", default="en", help="spaCy tokenizer language of the raw text")
    parser.add_argument("--device", default="auto", help="auto (a GPU when there is one, else the CPU), cpu, cuda or cuda:N")
    parser.add_argument("--max_document_chars", type=int, default=None,
                        help="refuse documents (lines) longer than this (default 200,000 characters)")
    args = parser.parse_args(argv)

    def main() -> None:
        from hmtl.predict import Predictor, check_limits
        from hmtl.progress import Progress

        # everything a user can get wrong is checked before the model loads and the work starts
        check_limits("--", batch_size=args.batch_size, max_document_chars=args.max_document_chars)
        if args.input_file != "-" and not Path(args.input_file).is_file():
            raise HmtlError(f"--input_file: {args.input_file} is not a file")
        if args.output_file != "-" and not Path(args.output_file).parent.is_dir():
            raise HmtlError(f"--output_file: folder {Path(args.output_file).parent} does not exist")
        namespaces = args.namespaces if args.namespaces in (None, "all") else [ns for ns in args.namespaces.split(",") if ns]
        keep_labels = None if args.keep_labels is None else [t for t in args.keep_labels.split(",") if t]
        limits = {"max_document_chars": args.max_document_chars} if args.max_document_chars is not None else {}
        predictor = Predictor.from_serialization_dir(args.serialization_dir, device=args.device, batch_size=args.batch_size,
                                                     language=args.language, **limits)
        predictor.label_filter(keep_labels, predictor.heads(namespaces))  # an unknown namespace or type fails now
        source = sys.stdin if args.input_file == "-" else open(args.input_file, encoding="utf-8")
        try:
            lines = [(n, line) for n, line in enumerate(source.read().splitlines(), start=1) if line.strip()]
        except UnicodeDecodeError as error:
            raise HmtlError(f"{args.input_file}: not UTF-8 text (byte {error.start}: {error.reason})") from None
        if not lines:
            raise HmtlError(f"{args.input_file}: no text (one document per line)")
        for number, line in lines:  # every document is checked before the work starts
            predictor.check_text(line, f"{args.input_file}:{number}: the document")
        to_file = args.output_file != "-"
        progress = Progress(len(lines), "predicting", "docs")
        with open(args.output_file, "w", encoding="utf-8") if to_file else contextlib.nullcontext(sys.stdout) as target:
            for chunk in document_chunks(lines):
                numbers, texts = zip(*chunk)
                for output in predictor.predict_many(list(texts), namespaces, list(numbers), keep_labels):
                    target.write(json.dumps(output) + "\n")
                target.flush()  # each chunk is kept as soon as it is done
                progress.update(len(chunk))
        progress.close()
        where = args.output_file if to_file else "standard output"
        print(f"wrote {len(lines)} documents to {where} ({progress.rate():.1f} documents/s)", file=sys.stderr)

    run_command(main)


def document_chunks(lines: list[tuple[int, str]], max_chars: int = 50_000, max_documents: int = 256):
    """Consecutive documents in groups the predictor batches together: big enough to fill batches, small enough
    that output is written (and progress shown) every few seconds."""
    chunk, chars = [], 0
    for line in lines:
        chunk.append(line)
        chars += len(line[1])
        if chars >= max_chars or len(chunk) >= max_documents:
            yield chunk
            chunk, chars = [], 0
    if chunk:
        yield chunk


def _serve(argv: list[str]) -> None:
    from hmtl.serve import serve_main  # the serve extra is imported only when it is asked for

    serve_main(argv)


def _probing(name: str, argv: list[str]) -> None:
    from hmtl.probing import commands

    sys.exit(getattr(commands, name)(argv))


COMMANDS = {
    "train": ("train a model from a config (train.py)", train_main),
    "evaluate": ("score a trained model on its test splits or any corpus file (evaluate.py)", evaluate_main),
    "predict": ("run a trained model on raw text, one document per line (predict.py)", predict_main),
    "probe": ("probe every layer on the SentEval probing tasks (probing/senteval_layers.py)",
              functools.partial(_probing, "senteval_layers_main")),
    "build-probing-tasks": ("build the probing tasks from UD treebanks (probing/build_tasks.py)",
                            functools.partial(_probing, "build_tasks_main")),
    "serve": ("serve a trained model over HTTP (POST /predict, GET /health, GET /info)",
              _serve),
}


def main(argv: list[str] | None = None) -> None:
    """``hmtl <command> [options]``: the scripts of a checkout as one installed command."""
    argv = sys.argv[1:] if argv is None else argv
    usage = "usage: hmtl <command> [options]   (hmtl <command> --help for its options)\n\ncommands:\n" + "\n".join(
        f"  {name:<20} {text}" for name, (text, _) in COMMANDS.items())
    if not argv or argv[0] in ("-h", "--help"):
        print(usage)
        sys.exit(0 if argv else 2)
    if argv[0] not in COMMANDS:
        print(f"error: unknown command {argv[0]!r}\n{usage}", file=sys.stderr)
        sys.exit(2)
    sys.argv[0] = f"hmtl {argv[0]}"
    COMMANDS[argv[0]][1](argv[1:])
