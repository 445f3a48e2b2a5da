#!/usr/bin/env bash
# Installs hmtl with its test extra into .venv (created if missing), fetches the corpora into data/ when a mirror or
# the network allows, and runs the test suite. Slow tests (whole real corpora, minutes of training) are opt-in:
#   HMTL_SLOW_TESTS=1 bash scripts/run_tests.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${VIRTUAL_ENV:-}" ]; then
  [ -d .venv ] || python3 -m venv .venv
  . .venv/bin/activate
fi
bash scripts/install.sh
if [ -n "${HMTL_DATA_MIRROR:-}" ] && [ -d "${HMTL_DATA_MIRROR}" ]; then
  bash scripts/data_setup.sh
fi
export HF_HUB_OFFLINE=1
markers="not slow"
[ "${HMTL_SLOW_TESTS:-0}" = "1" ] && markers=""
python -m pytest -q ${markers:+-m "$markers"} "$@"
