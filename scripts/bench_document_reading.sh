#!/usr/bin/env bash
# The document-reading ablation of docs/BENCHMARKS.md: each config trained reading sentences (each unit alone) and
# reading documents (embedder.transformer.reading "document": one pass per document shared by every task), same
# seed and schedule, then test F1 per task, seconds per epoch and prediction tokens/s on raw text.
#
#   bash scripts/bench_document_reading.sh RUN [RUN ...]      RUN: CONFIG_READING, e.g. conll03_document
#   bash scripts/bench_document_reading.sh report             the table of every finished run
#
# CONFIG: conll03 (configs/ner_conll03_minilm_frozen.json), scierc, hmtl, sample (the quick start's); READING:
# sentence or document; an optional _eN suffix trains N epochs (e.g. scierc_document_e14). Runs go to
# ${RUNS:-runs}/docread_<RUN>; a finished run (metrics.json with test metrics) is kept, an interrupted one resumed
# with --recover. ${THREADS:-1} thread(s) per training, so two lanes share a 2-core machine (OMP_WAIT_POLICY=PASSIVE).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench_common.sh
declare -A CONFIG=([conll03]=configs/ner_conll03_minilm_frozen.json [scierc]=configs/scierc.json [hmtl]=configs/hmtl.json
                   [sample]=configs/sample.json)
declare -A DATASET=([conll03]=conll03 [scierc]=scierc [hmtl]=gum [sample]=sample)  # whose test documents bench_predict.py reads

train() {  # CONFIG_READING[_eN]
  [[ $1 =~ ^([a-z0-9]+)_(sentence|document)(_e([0-9]+))?$ ]] || { echo "unknown run $1" >&2; exit 2; }
  local config=${BASH_REMATCH[1]} reading=${BASH_REMATCH[2]} epochs=${BASH_REMATCH[4]} out="$RUNS/docread_$1"
  finished "docread_$1" && return
  train_run "docread_$1" "${CONFIG[$config]}" "\"embedder\": {\"transformer\": {\"reading\": \"$reading\"}}, " \
    "${epochs:+\"num_epochs\": $epochs, }"
  python scripts/bench_predict.py --serialization_dir "$out" --dataset "${DATASET[$config]}" --split test \
    --threads "$THREADS" --output_file "$out/predict.json" > /dev/null 2>> "$out.log"
}

report() {
  python - "$RUNS" <<'EOF'
import json, statistics, sys
from pathlib import Path
print("| run | best epoch | test (main metric of each task) | median s/epoch (first) | peak RSS GiB | predict tokens/s |")
print("|---|---|---|---|---|---|")
for run in sorted(Path(sys.argv[1]).glob("docread_*/metrics.json")):
    summary = json.loads(run.read_text())
    if "test" not in summary:
        continue
    epochs = summary["epochs"]
    main = {k: round(v, 2) for k, v in summary["test"].items()
            if k.startswith("MEAN__") and k != "MEAN__all" and k.endswith(("_f1", "strict_micro_f1", "avg_f1"))}
    speed = run.with_name("predict.json")
    tokens = json.loads(speed.read_text())["tokens_per_second"] if speed.exists() else None
    print(f"| {run.parent.name[8:]} | {summary['best_epoch']}/{len(epochs)} | {json.dumps(main)} | "
          f"{statistics.median(e['seconds'] for e in epochs[1:] or epochs):.0f} ({epochs[0]['seconds']:.0f}) | "
          f"{max(e['peak_memory_mb'] for e in epochs) / 1024:.1f} | {tokens} |")
EOF
}

for run in "$@"; do
  if [ "$run" = report ]; then report; else train "$run"; fi
done
