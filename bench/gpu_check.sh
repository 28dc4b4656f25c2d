#!/usr/bin/env bash
# GPU check for a short loan of a GPU machine (8 minutes at most): LoRA and QLoRA trained
# tokens/s, peak memory and MFU, and the playground's side-by-side reply; the summary table
# is printed last. What it measures and how: bench/gpu_check.py's docstring.
#
#   bash bench/gpu_check.sh                  # GPU plan (the CPU smoke plan when no GPU)
#   bash bench/gpu_check.sh --cpu-smoke      # tiny model on CPU; other options: --help
#
# Expects the venv built by scripts/setup.sh (.venv), or `pip install -r requirements.txt`
# done for the python3 on PATH (with a CUDA build of torch). PYTHON=... picks another one.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${PYTHON:-}" ]; then
  PY=$PYTHON
elif [ -x .venv/bin/python ]; then
  PY=.venv/bin/python
else
  PY=python3
fi
export PYTHONUNBUFFERED=1
exec "$PY" bench/gpu_check.py "$@"
