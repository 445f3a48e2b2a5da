#!/usr/bin/env bash
# The multi-corpus figures of docs/BENCHMARKS.md: BioMTL's single-task vs multi-task table (NCBI-disease, JNLPBA,
# CoNLL-2003), the NER&POS&chunk chain against NER alone (all heads on one level; POS/chunk a level below NER),
# System B (PER/LOC/ORG only) and the CoNLL-2003 model scored on GUM's entities through a label map.
#
#   bash scripts/bench_multi_corpus.sh [RUN ...]
#
# RUN: one of ALL below (default: all of them, in that order). biomtl_200 is the BioMTL table's multi-task run
# (configs/biomtl.json: a shared level 200 wide, 10 epochs), biomtl_200_16 continues it to 16 epochs (the 10-epoch
# run kept as runs/biomtl_200_10epochs); biomtl_300 is the same with a 300-wide level for 12 epochs; biomtl_private
# gives each corpus its own 2x100 BiLSTM above the shared level (the tagger's private_encoder), 12 epochs, and
# biomtl_private_short trains the same model on a 14-epoch schedule, stops it after epoch 7 and finishes it with
# --recover as a 12-epoch one (the linear decay reaches zero at epoch 12 from 0.44 of its peak); biomtl_private_bio
# gives a private BiLSTM to the biomedical corpora only (CoNLL-2003 reads the shared level alone), 12 epochs;
# ncbi_from_conll03 fine-tunes the CoNLL-2003 model on NCBI-disease (--init_from), the fine-tuning figure.
# Any run NAME_seedN is NAME with "seed": N (the configs use 13), e.g. biomtl_private_bio_seed7.
#
# report compares ${BIOMTL:-biomtl_private_bio biomtl_private_bio_seed7 biomtl_private_bio_seed42} (seeds of one
# recipe: each, their mean and spread) with the single-task runs. Runs go to ${RUNS:-runs}/<name>; a
# finished run (metrics.json with test metrics) is kept, an interrupted one is resumed with --recover. Each
# training uses ${THREADS:-1} thread(s), so two lanes can share a 2-core machine:
#   bash scripts/bench_multi_corpus.sh ncbi jnlpba biomtl_200 & bash scripts/bench_multi_corpus.sh conll03 chain system_b
set -euo pipefail
cd "$(dirname "$0")/.."
ALL="ncbi jnlpba conll03 biomtl_200 biomtl_200_16 biomtl_300 biomtl_private biomtl_private_short biomtl_private_bio biomtl_private_bio_seed7 biomtl_private_bio_seed42 chain chain_hierarchical system_b ncbi_from_conll03 report"
source scripts/bench_common.sh
declare -A CONFIG=(
  [ncbi]=configs/ner_ncbi.json [jnlpba]=configs/ner_jnlpba.json [conll03]=configs/ner_conll03_minilm_frozen.json
  [biomtl_200]=configs/biomtl.json [biomtl_300]=configs/biomtl.json [biomtl_private]=configs/biomtl.json [biomtl_private_short]=configs/biomtl.json [biomtl_private_bio]=configs/biomtl.json [chain]=configs/ner_pos_chunk_conll03.json [system_b]=configs/ner_conll03_system_b.json
  [chain_hierarchical]=configs/ner_pos_chunk_conll03_hierarchical.json [ncbi_from_conll03]=configs/ner_ncbi.json
)
declare -A INIT_FROM=([ncbi_from_conll03]=conll03)
declare -A OVERRIDES=(  # what a variant changes in its config, before the trainer overrides
  [biomtl_300]='"levels": [{"name": "ner", "hidden_size": 300, "dropout": 0.5}], '
  [biomtl_private]='"tasks": [{"name": "ner", "type": "crf_tagger", "level": "ner", "datasets": ["ncbi", "jnlpba", "conll03"], "options": {"private_encoder": {"hidden_size": 100}}}], '
)
OVERRIDES[biomtl_private_short]=${OVERRIDES[biomtl_private]}
OVERRIDES[biomtl_private_bio]=${OVERRIDES[biomtl_private]/'"hidden_size": 100'/'"hidden_size": 100, "datasets": ["ncbi", "jnlpba"]'}
declare -A EPOCHS=([biomtl_300]=12 [biomtl_private]=12 [biomtl_private_bio]=12)
declare -A SHORTEN=([biomtl_private_short]="14 7 12")  # schedule, stopped after, finished as

epochs_done() {  # NAME: how many epochs its metrics.json records (0 before the first)
  python -c "import json,sys; print(len(json.load(open(sys.argv[1]))['epochs']))" "$RUNS/$1/metrics.json" 2>/dev/null || echo 0
}

train() {  # NAME, or NAME_seedN
  local name="$1" seed=""
  if [[ $1 =~ ^(.+)_seed([0-9]+)$ ]]; then name=${BASH_REMATCH[1]}; seed="\"seed\": ${BASH_REMATCH[2]}, "; fi
  local init=()
  [ -n "${INIT_FROM[$name]:-}" ] && init=(--init_from "$RUNS/${INIT_FROM[$name]}")
  train_run "$1" "${CONFIG[$name]}" "$seed${OVERRIDES[$name]:-}" "${EPOCHS[$name]:+\"num_epochs\": ${EPOCHS[$name]}, }" "${init[@]}"
}

longer() {  # NAME EPOCHS: continue a finished run to EPOCHS epochs (--recover; the linear decay restarts from there)
  echo "$1: continuing $RUNS/$1 to $2 epochs"
  cp -r "$RUNS/$1" "$RUNS/$1_$(epochs_done "$1")epochs"
  python train.py --config_file_path "${CONFIG[$1]}" --serialization_dir "$RUNS/$1" --recover \
    --overrides "{\"trainer\": {\"num_epochs\": $2, \"num_threads\": $THREADS}}" > "$RUNS/$1.longer.log" 2>&1
}

shortened() {  # NAME: train on a FROM-epoch schedule, stop after AFTER epochs, finish as a TO-epoch schedule
  local from after to out="$RUNS/$1"
  read -r from after to <<< "${SHORTEN[$1]}"
  finished "$1" && return
  local resume=()
  if [ "$(epochs_done "$1")" -lt "$after" ]; then
    [ -f "$out/last/trainer_state.pt" ] && resume=(--recover)
    echo "$1: training ${CONFIG[$1]} into $out on a $from-epoch schedule, stopped after epoch $after ${resume[*]:-}"
    python train.py --config_file_path "${CONFIG[$1]}" --serialization_dir "$out" "${resume[@]}" --force \
      --overrides "{${OVERRIDES[$1]}\"trainer\": {\"num_threads\": $THREADS, \"num_epochs\": $from}}" > "$out.log" 2>&1 &
    local pid=$!
    # metrics.json gets an epoch after that epoch's checkpoint is written
    until [ "$(epochs_done "$1")" -ge "$after" ]; do
      kill -0 "$pid" 2>/dev/null || { echo "$1: training stopped early, see $out.log"; return 1; }
      sleep 10
    done
    kill "$pid"; wait "$pid" || true
  fi
  echo "$1: finishing $out as a $to-epoch schedule (--recover)"
  python train.py --config_file_path "${CONFIG[$1]}" --serialization_dir "$out" --recover \
    --overrides "{\"trainer\": {\"num_epochs\": $to, \"num_threads\": $THREADS}}" >> "$out.log" 2>&1
}

report() {
  echo "## BioMTL table"
  local multi=()
  for run in ${BIOMTL:-biomtl_private_bio biomtl_private_bio_seed7 biomtl_private_bio_seed42}; do multi+=("$RUNS/$run"); done
  python scripts/compare_runs.py --multi "${multi[@]}" --single "$RUNS/ncbi" "$RUNS/jnlpba" "$RUNS/conll03" \
    --per_namespace --plot docs/img/biomtl_vs_single.png
  echo "## NER & POS & chunk chain vs NER alone; System B (PER/LOC/ORG) vs four types"
  for run in chain chain_hierarchical conll03 system_b; do
    python - "$RUNS/$run" <<'PY'
import json, statistics, sys
summary = json.load(open(f"{sys.argv[1]}/metrics.json"))
test = {k: round(v, 2) for k, v in summary["test"].items() if k.startswith("conll03__") and ("f1" in k or "accuracy" in k)}
seconds = statistics.median(e["seconds"] for e in summary["epochs"])
print(sys.argv[1], f"best epoch {summary['best_epoch']}/{len(summary['epochs'])}, median s/epoch {seconds}", json.dumps(test))
PY
  done
  echo "## Fine-tuning: NCBI-disease from the CoNLL-2003 model vs from scratch, dev F1 at equal updates"
  python scripts/compare_runs.py --curves "$RUNS/ncbi" "$RUNS/ncbi_from_conll03" --metric ncbi__ner_f1 \
    --plot docs/img/fine_tune_ncbi.png
  echo "## CoNLL-2003 model on GUM test entities (person->PER, place->LOC, organization->ORG, rest dropped)"
  python evaluate.py --serialization_dir "$RUNS/conll03" --namespace conll03__ner \
    --evaluation_data_file "${HMTL_DATA_DIR:-data}/gum/gum.test.conll.gz" --reader gum \
    --label_map '{"person": "PER", "place": "LOC", "organization": "ORG"}' --keep_labels PER,LOC,ORG \
    --output_file "$RUNS/conll03/gum_cross_corpus.json"
}

for name in "${@:-$ALL}"; do
  for run in $name; do
    case "$run" in
      report) report ;;
      biomtl_200_16) longer biomtl_200 16 ;;
      biomtl_private_short) shortened biomtl_private_short ;;
      *) train "$run" ;;
    esac
  done
done
