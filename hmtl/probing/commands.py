"""Command lines behind ``probing/build_tasks.py`` and ``probing/senteval_layers.py``.

Both return an exit status: 0 on success, 2 when the user can fix the problem (a missing file, an unknown task or
layer, a malformed line), printed as one ``error:`` line.
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import os
import sys
import time
from pathlib import Path
from typing import Callable

from hmtl.errors import HmtlError
from hmtl.probing.errors import ProbingError
from hmtl.probing.extract import POOLINGS, EncoderFn
from hmtl.probing.probe import CLASSIFIERS, PROTOCOLS, ProbeConfig
from hmtl.probing.tasks import SPLITS, TASK_NAMES, resolve_tasks

DEFAULT_TASK_PATH = "data/probing"
BASELINES = ("majority", "random", "glove")

# (serialization_dir) -> (encoder_fn, model identity for the vector cache)
EncoderFactory = Callable[[Path], tuple[EncoderFn, str]]


def _fail(error: Exception) -> int:
    print(f"error: {error}", file=sys.stderr)
    return 2


# ------------------------------------------------------------------------------------------------- build_tasks


def build_tasks_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Build the ten SentEval probing tasks from UD treebanks (English EWT and GUM), in SentEval's "
                    "format: <tr|va|te>\\t<label>\\t<tokenized sentence>. Definitions: docs/PROBING.md.")
    parser.add_argument("--data_dir", default=os.environ.get("HMTL_DATA_DIR", "data"),
                        help="corpora folder with ud_english_ewt/ and gum/ (default: $HMTL_DATA_DIR or data)")
    parser.add_argument("--treebanks", nargs="+", default=["ewt", "gum"], choices=["ewt", "gum"])
    parser.add_argument("--conllu", nargs="+", metavar="SPLIT=FILE", default=[],
                        help="CoNLL-U files instead of the treebanks, e.g. tr=train.conllu va=dev.conllu te=test.conllu "
                             "(a split may be given several times)")
    parser.add_argument("--output_dir", default=DEFAULT_TASK_PATH, help=f"where the files go (default {DEFAULT_TASK_PATH})")
    parser.add_argument("--tasks", nargs="+", default=None, help=f"a subset of: {' '.join(TASK_NAMES)}")
    parser.add_argument("--seed", type=int, default=1111)
    parser.add_argument("--min_length", type=int, default=5)
    parser.add_argument("--max_length", type=int, default=28)
    parser.add_argument("--wc_words", type=int, default=30, help="WordContent classes (target words)")
    parser.add_argument("--top_classes", type=int, default=20, help="TopConstituents classes, OTHER included")
    parser.add_argument("--max_per_class", type=int, default=None, help="cap each class of each split")
    parser.add_argument("--shared_targets", action="store_true",
                        help="let Tense/SubjNumber/ObjNumber share target lemmas across splits (more data; the paper "
                             "keeps them apart)")
    return parser


def build_tasks_main(argv: list[str] | None = None) -> int:
    from hmtl.probing.build import BuildOptions, build_all, load_sentences, treebank_files

    args = build_tasks_parser().parse_args(argv)
    try:
        tasks = [t.name for t in resolve_tasks(args.tasks)]
        if args.conllu:
            files: dict[str, list[Path]] = {split: [] for split in SPLITS}
            for item in args.conllu:
                split, _, path = item.partition("=")
                if split not in files or not path:
                    raise ProbingError(f"--conllu {item!r}: expected SPLIT=FILE with SPLIT one of tr, va, te")
                files[split].append(Path(path))
            for split in SPLITS:
                if not files[split]:
                    raise ProbingError(f"--conllu: no file for split {split}")
        else:
            files = treebank_files(args.data_dir, args.treebanks)
        options = BuildOptions(seed=args.seed, min_length=args.min_length, max_length=args.max_length,
                               wc_words=args.wc_words, top_classes=args.top_classes,
                               disjoint_targets=not args.shared_targets, max_per_class=args.max_per_class)
        started = time.perf_counter()
        for split in SPLITS:
            print(f"{split}: " + ", ".join(str(p) for p in files[split]))
        sentences = load_sentences(files)
        reports = build_all(sentences, args.output_dir, tasks, options)
    except HmtlError as error:
        return _fail(error)
    total = {split: sum(r.counts[split] for r in reports) for split in SPLITS}
    print(f"wrote {len(reports)} task file(s) and manifest.json to {args.output_dir} "
          f"({', '.join(f'{s} {total[s]}' for s in SPLITS)} instances) in {time.perf_counter() - started:.1f}s")
    return 0


# ---------------------------------------------------------------------------------------------- senteval_layers


def senteval_layers_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Probe every layer of a trained model with the SentEval probing tasks; writes a table, JSON, "
                    "Markdown and a PNG figure into <serialization_dir>/probing/.")
    parser.add_argument("--serialization_dir", default="out",
                        help="a training run's folder (with best/); default out, as in the README's train command")
    parser.add_argument("--layers", nargs="+", default=None, help="layers to probe (default: all the model has)")
    parser.add_argument("--tasks", nargs="+", default=None, help=f"default all: {' '.join(TASK_NAMES)}")
    parser.add_argument("--task_path", default=DEFAULT_TASK_PATH,
                        help="folder with the probing files (ours from build_tasks.py, or SentEval's data/probing)")
    parser.add_argument("--backend", choices=["hmtl", "senteval"], default="hmtl")
    parser.add_argument("--pooling", choices=list(POOLINGS), default="mean")
    parser.add_argument("--classifier", choices=list(CLASSIFIERS), default="logreg")
    parser.add_argument("--protocol", choices=list(PROTOCOLS), default="builtin",
                        help="--backend hmtl's logistic regression: builtin (standardized features, L2 grid 1e-5..1) "
                             "or senteval (SentEval's scikit-learn path: raw features, C in 2^-2..2^3, lbfgs with "
                             "max_iter 100), see docs/PROBING.md")
    parser.add_argument("--baselines", nargs="*", default=list(BASELINES), choices=list(BASELINES) + ["none"],
                        help="baseline rows (default: majority random glove; 'none' for none)")
    parser.add_argument("--transformer_layers", action="store_true",
                        help="also probe each layer of the pretrained transformer (transformer_0 ...), pooled to words")
    parser.add_argument("--untrained", action="store_true",
                        help="also probe the untrained model (same architecture and pretrained parts, fresh weights)")
    parser.add_argument("--random_dim", type=int, default=384, help="dimension of the random word vectors")
    parser.add_argument("--batch_size", type=int, default=64, help="sentences per encoder call")
    parser.add_argument("--device", default="auto", help="where the model encodes: auto (a GPU when there is one), cpu, cuda, cuda:N")
    parser.add_argument("--seed", type=int, default=1111)
    parser.add_argument("--max_iter", type=int, default=ProbeConfig.max_iter, help="L-BFGS iterations (logreg)")
    parser.add_argument("--mlp_search", action="store_true",
                        help="MLP: also search hidden in 50/100/200 and dropout in 0/0.1/0.2 (the paper's grid)")
    parser.add_argument("--output_dir", default=None, help="default <serialization_dir>/probing")
    parser.add_argument("--no_cache", action="store_true", help="do not read or write the HDF5 vector cache")
    parser.add_argument("--no_plot", action="store_true")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def model_fingerprint(serialization_dir: str | Path) -> str:
    """The trained model's identity for the vector cache: a hash of ``best/``'s weights and config."""
    best = Path(serialization_dir) / "best"
    digest = hashlib.sha256()
    files = sorted(p for p in best.iterdir() if p.is_file()) if best.is_dir() else []
    for path in files:
        digest.update(path.name.encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:32]


def check_serialization_dir(serialization_dir: str | Path) -> Path:
    directory = Path(serialization_dir)
    if not directory.is_dir():
        raise ProbingError(f"serialization directory {directory} does not exist")
    weights = directory / "best" / "model.safetensors"
    if not weights.is_file():
        raise ProbingError(f"{directory} has no trained model (expected {weights}); train one with train.py first")
    return directory


def load_trained_encoder(serialization_dir: Path, transformer_layers: bool = False, device: str = "cpu") -> tuple[EncoderFn, str]:
    """The default factory: ``hmtl.model.load_model`` (imported here, so the rest works without the model code)."""
    from hmtl.model import load_model
    from hmtl.probing.extract import model_encoder

    model = load_model(serialization_dir, device=device)
    model.eval()
    return model_encoder(model, transformer_layers), model_fingerprint(serialization_dir)


def load_untrained_encoder(serialization_dir: Path, seed: int, transformer_layers: bool = False,
                           device: str = "cpu") -> tuple[EncoderFn, str]:
    from hmtl.probing.baselines import untrained_encoder

    identity = f"untrained:{seed}:{model_fingerprint(serialization_dir)}"
    return untrained_encoder(serialization_dir, seed, transformer_layers, device), identity


def senteval_layers_main(argv: list[str] | None = None, encoder_factory: EncoderFactory | None = None,
                         untrained_factory: Callable[[Path, int], tuple[EncoderFn, str]] | None = None,
                         engine=None) -> int:
    """``encoder_factory`` / ``untrained_factory`` / ``engine`` replace the model loading and SentEval in tests."""
    from hmtl.probing import baselines as baseline_encoders
    from hmtl.probing.run import (Encoder, check_layers, format_table, load_tasks, probe_encoders,
                                  probe_with_senteval, write_report)

    args = senteval_layers_parser().parse_args(argv)
    chosen = [] if "none" in (args.baselines or []) else list(dict.fromkeys(args.baselines or []))
    try:
        tasks = resolve_tasks(args.tasks)
        directory = Path(args.serialization_dir)
        if encoder_factory is None:
            directory = check_serialization_dir(directory)
            encoder_factory = functools.partial(load_trained_encoder, transformer_layers=args.transformer_layers,
                                                device=args.device)
        elif not directory.is_dir():
            raise ProbingError(f"serialization directory {directory} does not exist")
        config = ProbeConfig(classifier=args.classifier, protocol=args.protocol, seed=args.seed,
                             max_iter=args.max_iter, hidden_grid=(50, 100, 200) if args.mlp_search else (50,),
                             dropout_grid=(0.0, 0.1, 0.2) if args.mlp_search else (0.0,))
        if args.backend == "senteval":
            from hmtl.probing.senteval_bridge import import_senteval, senteval_params

            senteval_params(Path("."), args.classifier)  # rejects mlp before any work
            engine = engine or import_senteval()
        missing = [task.name for task in tasks if not (Path(args.task_path) / task.file).is_file()]
        if missing and args.task_path == DEFAULT_TASK_PATH:
            print(f"probing sets missing in {args.task_path} ({', '.join(missing)}): building them from the UD "
                  "treebanks first (probing/build_tasks.py)")
            status = build_tasks_main(["--output_dir", args.task_path, "--tasks", *missing])
            if status:
                return status
        datasets = load_tasks(args.task_path, tasks)
        encoder_fn, model_id = encoder_factory(directory)
        layers = check_layers(encoder_fn, args.layers)
        encoders = [Encoder(encoder_fn, layers, model_id)]
        if args.untrained:
            factory = untrained_factory or functools.partial(load_untrained_encoder, device=args.device,
                                                             transformer_layers=args.transformer_layers)
            fn, untrained_id = factory(directory, args.seed)
            encoders.append(Encoder(fn, check_layers(fn, layers), untrained_id, prefix="untrained:", kind="untrained"))
        if "random" in chosen:
            encoders.append(Encoder(baseline_encoders.random_encoder(args.random_dim, args.seed),
                                    [baseline_encoders.RANDOM_LAYER], f"random:{args.random_dim}:{args.seed}",
                                    prefix="", kind="baseline"))
        if "glove" in chosen:
            encoders.append(Encoder(baseline_encoders.glove_encoder(), [baseline_encoders.GLOVE_LAYER],
                                    "glove-6B-50d", kind="baseline"))
        output_dir = Path(args.output_dir) if args.output_dir else directory / "probing"
        cache_path = None if args.no_cache else output_dir / "vectors.h5"
        started = time.perf_counter()
        protocol = f", protocol {args.protocol}" if args.backend == "hmtl" and args.classifier == "logreg" else ""
        print(f"probing {len(layers)} layer(s) x {len(tasks)} task(s) from {args.task_path} "
              f"(backend {args.backend}, {args.pooling} pooling, {args.classifier}{protocol})")
        if args.backend == "senteval":
            results = probe_with_senteval(encoders, datasets, tasks, args.task_path, args.pooling, args.classifier,
                                          args.seed, args.batch_size, cache_path, "majority" in chosen,
                                          not args.quiet, engine=engine)
        else:
            results = probe_encoders(encoders, datasets, args.pooling, config, args.batch_size, cache_path,
                                     "majority" in chosen, not args.quiet)
        baseline_rows = [name for name in BASELINES if name in chosen]  # the random and glove layers' rows
        settings = {"serialization_dir": str(directory), "task_path": str(args.task_path), "backend": args.backend,
                    "pooling": args.pooling, "classifier": args.classifier, "seed": args.seed,
                    "model_id": model_id, "seconds": round(time.perf_counter() - started, 1),
                    "counts": {d.task: d.counts() for d in datasets}}
        if args.backend == "hmtl":
            settings["protocol"] = args.protocol
            if args.protocol == "senteval":
                settings["probe"] = {"c_grid": list(config.c_grid), "max_iter": config.senteval_max_iter,
                                     "tol": config.senteval_tol, "standardize": False}
            else:
                settings["probe"] = {"l2_grid": list(config.l2_grid), "max_iter": config.max_iter, "tol": config.tol,
                                     "hidden_grid": list(config.hidden_grid),
                                     "dropout_grid": list(config.dropout_grid)}
        stem = f"{args.pooling}_{args.classifier}" + ("_senteval" if args.backend == "senteval" else "") \
            + ("_protocol-senteval" if args.backend == "hmtl" and args.protocol == "senteval" else "")
        order = layers + [f"untrained:{layer}" for layer in layers if args.untrained] + baseline_rows
        print()
        print(format_table(results, tasks, order))
        paths = write_report(output_dir, stem, results, tasks, layers, baseline_rows, settings, plot=not args.no_plot)
    except HmtlError as error:
        return _fail(error)
    print("\nwrote " + ", ".join(str(p) for p in paths.values()))
    return 0
