#!/usr/bin/env bash
# The full hierarchy (configs/hmtl.json) before and after a change, for docs/BENCHMARKS.md: the code of an earlier
# commit (its own configs/hmtl.json) and this checkout's, trained side by side for the same epochs with one thread
# each (same machine, same minutes, so the noise of a shared VM hits both), then seconds per epoch and peak RSS.
#
#   bash scripts/bench_hierarchy.sh [BEFORE_COMMIT] [EPOCHS]     (defaults: 7f3ef88, the code before issue 10; 1)
#
# Needs the corpora (scripts/data_setup.sh) and about 2 x 8 GiB of memory for the in-memory state cache of the
# old code. Results: runs/bench_hierarchy/{before,after}/metrics.json and the table printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
before=${1:-7f3ef88}
epochs=${2:-1}
out=runs/bench_hierarchy
code=${TMPDIR:-/tmp}/hmtl-code-$before
mkdir -p "$out"
if [ ! -d "$code" ]; then
  git worktree add --detach "$code" "$before" >/dev/null
fi
export OMP_WAIT_POLICY=PASSIVE HMTL_DATA_DIR=${HMTL_DATA_DIR:-$PWD/data}
overrides="{\"trainer\": {\"num_threads\": 1, \"num_epochs\": $epochs}}"
root=$PWD
# each train.py imports the hmtl package beside it (the script's folder comes first on sys.path)
(cd "$code" && python -c "import hmtl, sys; sys.exit(0 if hmtl.__file__.startswith('$code') else 1)") \
  || { echo "the code of $before does not import its own hmtl package" >&2; exit 1; }
(cd "$code" && python train.py --config_file_path configs/hmtl.json --serialization_dir "$root/$out/before" --force \
   --overrides "$overrides") > "$out/before.log" 2>&1 &
python train.py --config_file_path configs/hmtl.json --serialization_dir "$out/after" --force \
  --overrides "$overrides" > "$out/after.log" 2>&1 &
wait
python - "$out" "$before" <<'EOF'
import json, sys
from pathlib import Path
out, before = Path(sys.argv[1]), sys.argv[2]
print(f"| code | epoch | seconds | peak RSS (GiB) | dev MEAN__all |")
print("|---|---|---|---|---|")
for name, label in (("before", f"before ({before}, in-memory cache)"), ("after", "after (this checkout, configs/hmtl.json)")):
    for epoch in json.loads((out / name / "metrics.json").read_text())["epochs"]:
        print(f"| {label} | {epoch['epoch']} | {epoch['seconds']:.0f} | {epoch['peak_memory_mb'] / 1024:.2f} | "
              f"{epoch['validation']['MEAN__all']:.2f} |")
EOF
