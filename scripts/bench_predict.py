"""Prediction speed of a trained model on raw text through the Python API (``Predictor``), as predict.py runs it:
the documents of a corpus split turned back into text (tokens joined by spaces), tokenized by the predictor,
every task of the model run on each document, in predict.py's chunks of documents.

    python scripts/bench_predict.py --serialization_dir out --dataset gum --split test [--threads 2]

Tokens are those the predictor's tokenizer made; the first chunk is timed too (nothing is warmed up).
``positions_per_text_subword``: what the transformer's forward was given (windows, [CLS] and [SEP] included) per
subword of the text, the cost of its reading mode (every sentence alone and every document again for coreference,
or each document once).
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from hmtl.cli import document_chunks
from hmtl.data.loading import read_split
from hmtl.model import load_model
from hmtl.predict import Predictor
from hmtl.training.batching import make_batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serialization_dir", required=True, help="a training run, or a saved model folder (e.g. a run's last/)")
    parser.add_argument("--dataset", required=True, help="a dataset of the model's config whose documents to use")
    parser.add_argument("--split", default="test")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--max_documents", type=int, default=None)
    parser.add_argument("--pretokenized", action="store_true", help="give the corpus tokens instead of raw text")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--output_file", default=None, help="also write the figures here (JSON)")
    parser.add_argument("--overrides", default=None, help='inference settings of the model, e.g. \'{"embedder": {"transformer": {"reading": "document"}}}\'')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    predictor = Predictor(load_model(args.serialization_dir, args.overrides, args.device), batch_size=args.batch_size)
    device = predictor.model.device
    documents = read_split(args.dataset, predictor.model.config.data[args.dataset], args.split)[: args.max_documents]
    inputs = [d.sentences if args.pretokenized else "\n".join(" ".join(s) for s in d.sentences) for d in documents]
    transformer = predictor.model.embedder.transformer
    read_before = transformer.positions_read if transformer is not None else 0
    started = time.perf_counter()
    tokens, sentences = 0, []
    for chunk in document_chunks(list(enumerate(inputs))):
        for output in predictor.predict([text for _, text in chunk]):
            tokens += sum(len(s) for s in output["sentences"])
            sentences += output["sentences"]
    seconds = time.perf_counter() - started
    if transformer is not None:  # what the transformer was given per subword of the text ([CLS], [SEP], overlaps)
        text_subwords = sum(len(transformer.ids(sentence)[0]) for sentence in sentences)
        reading = {"reading": transformer.reading,
                   "positions_per_text_subword": round((transformer.positions_read - read_before) / text_subwords, 3)}
    else:
        reading = {}
    transformer_seconds, subwords = transformer_alone(predictor, inputs, args.batch_size)
    figures = {
        "serialization_dir": args.serialization_dir, "dataset": args.dataset, "split": args.split,
        "input": "pre-tokenized" if args.pretokenized else "raw text", "documents": len(documents), "tokens": tokens,
        "threads": args.threads, "batch_size": args.batch_size, "seconds": round(seconds, 1),
        "documents_per_second": round(len(documents) / seconds, 2), "tokens_per_second": round(tokens / seconds),
        "transformer_alone_seconds": transformer_seconds,
        "transformer_subwords_per_token": round(subwords / tokens, 3), **reading,
        **(transformer_ceiling(predictor, tokens, subwords) if device.type == "cpu" else {}),
        "transformer_alone_share": round(transformer_seconds / seconds, 3) if transformer_seconds else None,
        "tasks": list(predictor.model.tasks), "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "device": str(device),
    }
    if device.type == "cuda":
        figures.update(gpu=torch.cuda.get_device_name(device),
                       peak_gpu_memory_mb=round(torch.cuda.max_memory_allocated(device) / 2**20))
    print(json.dumps(figures, indent=2))
    if args.output_file:
        Path(args.output_file).write_text(json.dumps(figures, indent=2))


@torch.no_grad()
def transformer_alone(predictor: Predictor, inputs: list, batch_size: int) -> tuple[float | None, int]:
    """Seconds the transformer alone takes over the same units (sentences, and whole documents for document
    tasks) in the same batches, subwords known, nothing else run: what prediction cannot go below; and the
    subwords it read (with [CLS] and [SEP])."""
    transformer = predictor.model.embedder.transformer
    if transformer is None:
        return None, 0
    instances = predictor.model.task_instances({dataset: predictor.documents(inputs) for _, _, dataset in predictor.heads(None)})
    units = list({id(i.features): i for found in instances.values() for i in found}.values())  # once per features dict
    started = time.perf_counter()
    for batch in make_batches(units, batch_size, length=lambda i: len(i.features["subwords"])):
        transformer.layer_states([i.features["subwords"] for i in batch])
    if transformer.model.device.type == "cuda":
        torch.cuda.synchronize(transformer.model.device)
    return round(time.perf_counter() - started, 1), sum(len(i.features["subwords"]) + 2 for i in units)


def transformer_ceiling(predictor: Predictor, tokens: int, subwords: int) -> dict:
    """The bound the transformer puts on tokens/s here: its matrix-multiply FLOPs per subword (linear layers; the
    attention scores come on top) against the fp32 GEMM throughput this machine gives a transformer-shaped
    product, measured now with the same threads."""
    transformer = predictor.model.embedder.transformer
    if transformer is None:
        return {}
    config = transformer.model.config
    flops = 2 * config.num_hidden_layers * (4 * config.hidden_size ** 2 + 2 * config.hidden_size * config.intermediate_size)
    a, b = torch.randn(768, config.hidden_size), torch.randn(config.hidden_size, config.intermediate_size)
    for _ in range(3):
        a @ b
    started, repeats = time.perf_counter(), 200
    for _ in range(repeats):
        a @ b
    gflops = 2 * a.shape[0] * a.shape[1] * b.shape[1] * repeats / (time.perf_counter() - started) / 1e9
    ceiling = gflops * 1e9 / flops
    return {"transformer_mflops_per_subword": round(flops / 1e6, 1), "gemm_gflops": round(gflops, 1),
            "transformer_ceiling_subwords_per_second": round(ceiling),
            "transformer_ceiling_tokens_per_second": round(ceiling * tokens / subwords)}


if __name__ == "__main__":
    main()
