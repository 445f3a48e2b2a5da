#!/usr/bin/env bash
# The figures of docs/BENCHMARKS.md for events, sentence classification and sampling schedules:
#
#   bash scripts/bench_events_ade_sampling.sh [RUN ...]      default: every run below, then report
#
# phee          PHEE events alone (configs/events_phee.json)
# phee_ncbi     the same events on a level above an NCBI-disease tagger (configs/events_phee_ncbi.json)
# ade           ADE: sentence classification over every sentence, NER and relations on the annotated ones
#               (configs/ade.json), and ade_classifier / ade_ner / ade_relation: each of its tasks alone, same
#               encoder and levels
# ade_tuned, ade_classifier_tuned
#               that finished run's best model tested with its classifier's threshold chosen on dev
#               (evaluate.py --tune, what the option tune_thresholds does at the end of training): $RUNS/<run>.json
# sampling_S    configs/biomtl.json with sampler S (uniform, proportional, temperature, annealed) for
#               ${SAMPLING_EPOCHS:-5} epochs, each corpus its own group (chain ncbi__ner|jnlpba__ner|conll03__ner:
#               the config's one task over three datasets is one group, where every sampler trains the same steps)
# report        the tables: test figures, best epoch, seconds per epoch, and each group's share of the steps
#
# Runs go to ${RUNS:-runs}/<run>; a finished run is kept, an interrupted one resumed. ${THREADS:-1} thread(s) each.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench_common.sh
ALL="phee ade ade_classifier ade_ner ade_relation phee_ncbi sampling_uniform sampling_proportional sampling_temperature sampling_annealed report"

alone() {  # TASK: configs/ade.json's task TASK and nothing else (no chain)
  python -c "import json,sys; tasks=[t for t in json.load(open('configs/ade.json'))['tasks'] if t['name']==sys.argv[1]]; print(json.dumps({'tasks': tasks, 'chain': None})[1:-1] + ', ')" "$1"
}

tuned() {  # RUN: evaluate.py --tune on $RUNS/RUN, its classifiers' tune_thresholds turned on
  [ -f "$RUNS/${1}_tuned.json" ] && { echo "${1}_tuned: $RUNS/${1}_tuned.json kept"; return; }
  python evaluate.py --serialization_dir "$RUNS/$1" --tune --output_file "$RUNS/${1}_tuned.json" \
    --overrides "$(python -c "
import json, sys
tasks = json.load(open(sys.argv[1]))['tasks']
for task in tasks:
    if task['type'] == 'classifier':
        task['options']['tune_thresholds'] = True
print(json.dumps({'tasks': tasks}))" "$RUNS/$1/best/config.json")"
}

report() {
  python - "$RUNS" <<'PY'
import json, statistics, sys
from pathlib import Path

KEYS = ("trig_id_f1", "trig_class_f1", "arg_id_f1", "arg_class_f1", "ner_f1", "relation_strict_micro_f1",
        "relation_strict_macro_f1", "classifier_f1_ADE", "classifier_accuracy", "classifier_macro_f1")
print("| run | best epoch | updates to best | test | median s/epoch (first) | peak RSS GiB | share of steps |")
print("|---|---|---|---|---|---|---|")
for name in sys.argv[2:] or ["phee", "phee_ncbi", "ade", "ade_classifier", "ade_ner", "ade_relation",
                            "sampling_uniform", "sampling_proportional", "sampling_temperature", "sampling_annealed"]:
    path = Path(sys.argv[1]) / name / "metrics.json"
    if not path.exists() or "test" not in json.loads(path.read_text()):
        print(f"| {name} | not finished | | | | | |")
        continue
    summary = json.loads(path.read_text())
    epochs = summary["epochs"]
    test = {k: round(v, 2) for k, v in summary["test"].items() if not k.startswith("MEAN__") and k.endswith(KEYS)}
    steps = {}
    for epoch in epochs:
        for group, n in epoch["task_steps"].items():
            steps[group] = steps.get(group, 0) + n
    total = sum(steps.values())
    share = ", ".join(f"{group} {100 * n / total:.0f}%" for group, n in steps.items())
    print(f"| {name} | {summary['best_epoch']}/{len(epochs)} | {epochs[summary['best_epoch'] - 1]['updates']} | "
          f"{json.dumps(test)} | "
          f"{statistics.median(e['seconds'] for e in epochs[1:] or epochs):.0f} ({epochs[0]['seconds']:.0f}) | "
          f"{max(e['peak_memory_mb'] for e in epochs) / 1024:.1f} | {share} |")
PY
}

[ $# -gt 0 ] || set -- $ALL
for run in "$@"; do
  case "$run" in
    phee) train_run phee configs/events_phee.json "" "" ;;
    phee_ncbi) train_run phee_ncbi configs/events_phee_ncbi.json "" "" ;;
    ade) train_run ade configs/ade.json "" "" ;;
    ade_tuned|ade_classifier_tuned) tuned "${run%_tuned}" ;;
    ade_classifier|ade_ner|ade_relation) train_run "$run" configs/ade.json "$(alone "${run#ade_}")" "" ;;
    sampling_*) train_run "$run" configs/biomtl.json \
                  "\"chain\": \"ncbi__ner|jnlpba__ner|conll03__ner\", \"sampler\": {\"type\": \"${run#sampling_}\"}, " \
                  "\"num_epochs\": ${SAMPLING_EPOCHS:-5}, " ;;
    report) report ;;
    *) echo "unknown run $run" >&2; exit 2 ;;
  esac
done
