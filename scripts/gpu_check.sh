#!/usr/bin/env bash
# The check ../shared/GPU.md asks for whenever a GPU is available, as one command with a time limit per stage:
#   1. the GPU-marked tests (tests/test_gpu.py: every task type on CUDA in fp32 / bf16 / fp16, --recover, a model
#      moving between GPU and CPU, evaluate / predict / serve on CUDA, torchrun with NCCL)
#   2. figures for configs/ner_conll03_minilm_frozen.json and configs/hmtl.json: seconds per training step and per
#      epoch (scripts/bench_steps.py, a fixed number of steps per task group), the GPU's busy share and host syncs
#      per step, prediction tokens/s on raw text (scripts/bench_predict.py, on the model after those steps), peak
#      GPU memory
# Everything lands in OUT/: gpu_check.json (all figures), check.log, tests.xml.
#
#   bash scripts/gpu_check.sh OUT [DEVICE] [STEPS]     (DEVICE: cuda (default) or cpu, for the figures beside it)
#
# On the GPU machine (no network, no hmtl dependencies) it unpacks what scripts/gpu_carry.sh put in .gpu/.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: gpu_check.sh OUT [DEVICE] [STEPS]}
device=${2:-cuda}
steps=${3:-20}
mkdir -p "$out"
log=$out/check.log
if [ -d .gpu ] && ! python -c "import pydantic, spacy" 2>/dev/null; then
  mkdir -p /tmp/hmtl-site && tar -xJf .gpu/site.tar.xz -C /tmp/hmtl-site
  export PYTHONPATH=/tmp/hmtl-site:$PWD/.gpu/pkgs:$PWD${PYTHONPATH:+:$PYTHONPATH}
  [ -d data/conll2003 ] || tar -xJf .gpu/data.tar.xz
fi
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 HMTL_DATA_DIR=${HMTL_DATA_DIR:-$PWD/data}
{ date; python -c "import spacy; spacy.blank('en')" && echo "spaCy tokenizer: ok"; python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')"; nproc; } >> "$log" 2>&1

stage() {  # SECONDS NAME COMMAND...: runs it with a time limit, logging its output and its exit status; stages
  local limit=$1 name=$2  # whose name does not match $GPU_CHECK_STAGES (a regex, default: all) are skipped
  shift 2
  [[ $name =~ ${GPU_CHECK_STAGES:-.} ]] || return 0
  echo "=== $name ($(date +%T), limit ${limit}s)" >> "$log"
  timeout "$limit" "$@" >> "$log" 2>&1
  local rc=$?
  echo "=== $name: rc $rc" >> "$log"
  echo "\"$name\": $rc," >> "$out/rc.txt"
}

threads=$(nproc | awk '{print ($1 > 4 ? 4 : $1)}')
figures() {  # CONFIG DATASET: seconds per step and epoch, then prediction speed of the model after those steps
  local model=${TMPDIR:-/tmp}/hmtl-gpu-check-$1
  stage 240 "steps_$1" python scripts/bench_steps.py --config_file_path "configs/$1.json" --device "$device" \
    --steps "$steps" --threads "$threads" --save "$model" --output_file "$out/steps_$1.json"
  stage 300 "predict_$1" python scripts/bench_predict.py --serialization_dir "$model" --dataset "$2" --split test \
    --device "$device" --threads "$threads" --output_file "$out/predict_$1.json"
  rm -rf "$model"
}
figures ner_conll03_minilm_frozen conll03
if [ "$device" != cpu ]; then
  stage 300 tests python -m pytest -q -m gpu tests/test_gpu.py -p no:cacheprovider --junitxml "$out/tests.xml"
fi
figures hmtl gum
python - "$out" <<'EOF' >> "$log" 2>&1
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
summary = {"exit_codes": json.loads("{" + (out / "rc.txt").read_text().rstrip().rstrip(",") + "}")}
for path in sorted(out.glob("*_*.json")):
    if path.name != "gpu_check.json":
        summary[path.stem] = json.loads(path.read_text())
(out / "gpu_check.json").write_text(json.dumps(summary, indent=2))
for path in [*out.glob("steps_*.json"), *out.glob("predict_*.json"), out / "rc.txt"]:  # all of it is in gpu_check.json
    path.unlink()
print(json.dumps(summary["exit_codes"]))
EOF
tail -n 3 "$log"
