#!/usr/bin/env bash
# torchrun figure of docs/BENCHMARKS.md: the CoNLL-2003 frozen-MiniLM NER config trained EPOCHS epochs in one
# process (2 threads) and in two torchrun processes (gloo, 1 thread each) on this 2-core CPU; prints seconds per
# epoch and dev F1 of each.
#
#   EPOCHS=2 bash scripts/bench_ddp.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs}
EPOCHS=${EPOCHS:-2}
export OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1
config=configs/ner_conll03_minilm_frozen.json
python train.py --config_file_path $config --serialization_dir "$RUNS/ddp_1proc" --force \
  --overrides "{\"trainer\": {\"num_epochs\": $EPOCHS, \"num_threads\": 2}}" > "$RUNS/ddp_1proc.log" 2>&1
torchrun --nproc_per_node 2 train.py --config_file_path $config --serialization_dir "$RUNS/ddp_2proc" --force \
  --overrides "{\"trainer\": {\"num_epochs\": $EPOCHS, \"num_threads\": 1}}" > "$RUNS/ddp_2proc.log" 2>&1
for run in ddp_1proc ddp_2proc; do
  python - "$RUNS/$run" <<'PY'
import json, sys
summary = json.load(open(f"{sys.argv[1]}/metrics.json"))
print(sys.argv[1], [(e["epoch"], e["seconds"], e["updates"], round(e["validation"]["conll03__ner_f1"], 2)) for e in summary["epochs"]],
      "test", round(summary["test"]["conll03__ner_f1"], 2))
PY
done
