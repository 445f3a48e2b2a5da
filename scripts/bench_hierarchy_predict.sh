#!/usr/bin/env bash
# Raw-text prediction of one trained full hierarchy (configs/hmtl.json) by an earlier commit's code and by this
# checkout, back to back in rounds (same machine, same minutes), for docs/BENCHMARKS.md (issue 22's speed figure):
#
#   bash scripts/bench_hierarchy_predict.sh RUN [BEFORE_COMMIT] [THREADS] [ROUNDS]
#        (defaults: 2455a36, the code before document reading; 1 thread; 2 rounds)
#
# RUN is a finished training of configs/hmtl.json (its best/ model). Three readers of the same weights:
#   before    the earlier code (each sentence alone, then each document again for coreference); the model's
#             config loses the keys that code does not know (each a later default: reading, window, include)
#   sentence  this checkout reading sentences   (--overrides reading "sentence")
#   document  this checkout reading documents   (each document once)
# each predicting the GUM test documents as raw text (scripts/bench_predict.py). Results: runs/bench_hierarchy_predict/
# <reader>_<round>.json and the table printed at the end (the best round of each).
set -euo pipefail
cd "$(dirname "$0")/.."
run=$1
before=${2:-2455a36}
threads=${3:-1}
rounds=${4:-2}
out=runs/bench_hierarchy_predict
code=${TMPDIR:-/tmp}/hmtl-code-$before
export OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1 HMTL_DATA_DIR=${HMTL_DATA_DIR:-$PWD/data}
mkdir -p "$out"
[ -d "$code" ] || git worktree add --detach "$code" "$before" >/dev/null
rm -rf "$out/before_model" && cp -r "$run/best" "$out/before_model"
# run from the earlier code's folder: `python -` puts the working directory first on sys.path, where this
# checkout's hmtl would shadow PYTHONPATH's
(cd "$code" && python - "$OLDPWD/$out/before_model/config.json") <<'PY'
import json, sys
from pydantic import ValidationError
from hmtl.config import Config  # the earlier code's (the working directory)
path = sys.argv[1]
config = json.load(open(path))
try:
    Config.model_validate(config)
except ValidationError as error:
    for problem in error.errors():
        if problem["type"] != "extra_forbidden":
            raise
        *parents, key = problem["loc"]
        node = config
        for part in parents:
            node = node[part]
        print(f"the earlier code does not know {'.'.join(map(str, problem['loc']))} = {node.pop(key)!r}: dropped")
json.dump(config, open(path, "w"), indent=2)
PY
for round in $(seq 1 "$rounds"); do
  PYTHONPATH="$code" python "$code/scripts/bench_predict.py" --serialization_dir "$out/before_model" --dataset gum \
    --threads "$threads" > "$out/before_$round.json"
  for reading in sentence document; do
    python scripts/bench_predict.py --serialization_dir "$run/best" --dataset gum --threads "$threads" \
      --overrides "{\"embedder\": {\"transformer\": {\"reading\": \"$reading\"}}}" \
      --output_file "$out/${reading}_$round.json" > /dev/null
  done
done
python - "$out" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
print("| reader | tokens | tokens/s (best round) | rounds | positions per text subword |")
print("|---|---:|---:|---|---:|")
for reader in ("before", "sentence", "document"):
    results = [json.loads(p.read_text()) for p in sorted(out.glob(f"{reader}_*.json"))]
    best = max(results, key=lambda r: r["tokens_per_second"])
    print(f"| {reader} | {best['tokens']} | {best['tokens_per_second']} | "
          f"{', '.join(str(r['tokens_per_second']) for r in results)} | {best.get('positions_per_text_subword', '')} |")
PY
