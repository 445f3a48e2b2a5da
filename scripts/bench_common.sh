# Sourced by the bench_*.sh scripts: one way to train a named run that survives interruption.
#   finished NAME                               the run in $RUNS/NAME has its test metrics (says so)
#   train_run NAME CONFIG OVERRIDES TRAINER [ARGS...]
#       train CONFIG into $RUNS/NAME with OVERRIDES (JSON object members, each followed by ", "; may be empty), the
#       trainer section's TRAINER members (same form) and $THREADS thread(s); an interrupted run resumes with
#       --recover; ARGS go to train.py (e.g. --init_from DIR)
RUNS=${RUNS:-runs}
THREADS=${THREADS:-1}
export OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1

finished() {
  local out="$RUNS/$1"
  if [ -f "$out/metrics.json" ] && python -c "import json,sys; sys.exit('test' not in json.load(open(sys.argv[1])))" "$out/metrics.json"; then
    echo "$1: finished run in $out, kept"
    return 0
  fi
  return 1
}

train_run() {
  local name=$1 config=$2 overrides=$3 trainer=$4 out="$RUNS/$1"
  shift 4
  finished "$name" && return
  local args=("$@")
  [ -f "$out/last/trainer_state.pt" ] && args=(--recover)
  mkdir -p "$RUNS"
  echo "$name: training $config into $out ${args[*]:-}"
  python train.py --config_file_path "$config" --serialization_dir "$out" "${args[@]}" --force \
    --overrides "{$overrides\"trainer\": {$trainer\"num_threads\": $THREADS}}" > "$out.log" 2>&1
}
