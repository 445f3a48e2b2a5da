#!/usr/bin/env python
"""Probe every layer of a trained model on the ten SentEval probing tasks (see docs/PROBING.md). With no arguments
it probes ``out`` (the README's run) and builds the probing sets into data/probing first if they are missing.

    python probing/senteval_layers.py [--serialization_dir out] [--layers ...] [--tasks ...] [--task_path DIR]
        [--backend hmtl|senteval] [--pooling mean|max] [--classifier logreg|mlp]
"""
import sys

from hmtl.probing.commands import senteval_layers_main

if __name__ == "__main__":
    sys.exit(senteval_layers_main())
