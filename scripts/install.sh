#!/usr/bin/env bash
# Installs hmtl and everything it needs into the current Python environment (a venv is recommended).
# torch is pinned to the 2.13.0 CPU wheel: an unpinned torch pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet "torch==2.13.0" -e ".[test,serve,tracking]"
