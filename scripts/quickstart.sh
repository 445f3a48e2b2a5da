#!/usr/bin/env bash
# Quick start: installs hmtl (into .venv unless a virtual environment is active), trains the whole hierarchy
# (NER, mention detection, relations, coreference) on the bundled sample corpus, evaluates it, and predicts on
# a raw sentence. Offline; a few minutes on a laptop CPU. Output goes to ${1:-out/sample}.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-out/sample}"
if [ -z "${VIRTUAL_ENV:-}" ]; then
  [ -d .venv ] || python3 -m venv .venv
  . .venv/bin/activate
fi
bash scripts/install.sh
export HF_HUB_OFFLINE=1
python train.py --config_file_path configs/sample.json --serialization_dir "$out" --force
python evaluate.py --serialization_dir "$out"
echo "Ada Lovelace, who lived in London, worked for the Analytical Society. She wrote the first program." \
  | python predict.py --serialization_dir "$out" --input_file -
echo "TensorBoard: tensorboard --logdir $out/log"
