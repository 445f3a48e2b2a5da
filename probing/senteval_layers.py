#!/usr/bin/env python
"""Probe every layer of a trained model on the ten SentEval probing tasks (see docs/PROBING.md).

    python probing/senteval_layers.py --serialization_dir out [--layers ...] [--tasks ...] [--task_path DIR]
        [--backend hmtl|senteval] [--pooling mean|max] [--classifier logreg|mlp]
"""
import sys

from hmtl.probing.commands import senteval_layers_main

if __name__ == "__main__":
    sys.exit(senteval_layers_main())
