#!/usr/bin/env python
"""Build the ten SentEval probing tasks from UD English EWT and GUM (see docs/PROBING.md).

    HMTL_DATA_DIR=/path/to/corpora python probing/build_tasks.py [--output_dir data/probing] [--seed 1111]
"""
import sys

from hmtl.probing.commands import build_tasks_main

if __name__ == "__main__":
    sys.exit(build_tasks_main())
