"""Prediction speed of a trained model through the Python API (``Predictor``): documents and tokens per second on
real documents, every task of the model run on each one (as ``predict.py`` does).

    python scripts/bench_predict.py --serialization_dir out --dataset gum --split test [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import time

import torch
from tqdm import tqdm

from hmtl.data.loading import read_split
from hmtl.predict import Predictor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serialization_dir", required=True)
    parser.add_argument("--dataset", required=True, help="a dataset of the model's config whose documents to use")
    parser.add_argument("--split", default="test")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max_documents", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    predictor = Predictor.from_serialization_dir(args.serialization_dir)
    documents = read_split(args.dataset, predictor.model.config.data[args.dataset], args.split)[: args.max_documents]
    started = time.perf_counter()
    for document in tqdm(documents, desc="predicting"):
        predictor.predict(document.sentences, document.doc_id)
    seconds = time.perf_counter() - started
    tokens = sum(len(d.tokens) for d in documents)
    print(json.dumps({
        "serialization_dir": args.serialization_dir, "dataset": args.dataset, "split": args.split,
        "documents": len(documents), "tokens": tokens, "threads": args.threads, "seconds": round(seconds, 1),
        "documents_per_second": round(len(documents) / seconds, 2), "tokens_per_second": round(tokens / seconds),
        "tasks": list(predictor.model.tasks),
    }, indent=2))


if __name__ == "__main__":
    main()
