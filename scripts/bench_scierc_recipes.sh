#!/usr/bin/env bash
# Recipes for SciERC's relation head (issue 22), each a short run of the relation task alone on configs/scierc.json
# (both levels kept, document reading, 12 epochs), so that what moves relation F1 is found before the long
# three-task runs:
#
#   bash scripts/bench_scierc_recipes.sh [RUN ...]       default: all of them, then report
#
# re_base       the relation task as configs/scierc.json has it (batches of 16 sentences)
# re_batch4     batches of 4 sentences: 4x the updates per epoch
# re_weight3    the relation loss weighted 3x beside the head's own entity loss
# re_neg30      30 negative pairs drawn per sentence instead of 100
# report        test relation F1 (strict, boundaries), the head's entity F1, best epoch, seconds per epoch
#
# Runs go to ${RUNS:-runs}/scierc_<run>, ${THREADS:-1} thread(s) each; finished runs are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench_common.sh
ALL="re_base re_batch4 re_weight3 re_neg30 report"

relation_alone() {  # EXTRA_OPTIONS: configs/scierc.json's relation task alone, its options extended
  python -c "
import json, sys
task = next(t for t in json.load(open('configs/scierc.json'))['tasks'] if t['name'] == 'relation')
task['options'].update(json.loads(sys.argv[1]))
print(json.dumps({'tasks': [task], 'embedder': {'transformer': {'reading': 'document'}}})[1:-1] + ', ')" "$1"
}

declare -A OPTIONS=([re_base]='{}' [re_batch4]='{"batch_size": 4}' [re_weight3]='{"relation_weight": 3.0}'
                    [re_neg30]='{"negative_samples": 30}')

report() {
  python - "$RUNS" <<'PY'
import json, statistics, sys
from pathlib import Path
print("| run | best epoch | RE strict micro | RE boundaries micro | RE strict macro | entity F1 (RE head) | median s/epoch |")
print("|---|---|---:|---:|---:|---:|---:|")
for path in sorted(Path(sys.argv[1]).glob("scierc_re_*/metrics.json")):
    summary = json.loads(path.read_text())
    if "test" not in summary:
        continue
    t = summary["test"]
    f = lambda key: f"{t['scierc__relation_' + key]:.2f}"
    seconds = statistics.median(e["seconds"] for e in summary["epochs"][1:] or summary["epochs"])
    print(f"| {path.parent.name} | {summary['best_epoch']}/{len(summary['epochs'])} | {f('strict_micro_f1')} | "
          f"{f('boundaries_micro_f1')} | {f('strict_macro_f1')} | {f('entity_f1')} | {seconds:.0f} |")
PY
}

[ $# -gt 0 ] || set -- $ALL
for run in "$@"; do
  case "$run" in
    report) report ;;
    re_*) train_run "scierc_$run" configs/scierc.json "$(relation_alone "${OPTIONS[$run]}")" "\"num_epochs\": 12, " ;;
    *) echo "unknown run $run" >&2; exit 2 ;;
  esac
done
