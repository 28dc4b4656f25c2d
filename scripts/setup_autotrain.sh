#!/usr/bin/env bash
# Build AutoTrain Advanced (the "AutoTrain" training method) in its own venv: .venv-autotrain,
# or TUNESMITH_AUTOTRAIN_VENV when set (the app sets it to autotrain_config.venv_dir(), under
# TUNESMITH_HOME on a Space). It cannot share .venv: autotrain-advanced 0.8.36 pins
# transformers 4.48, peft 0.14, trl 0.13 and huggingface-hub 0.27, while the app needs
# gradio 6 and transformers 5. The app only ever runs it as a subprocess
# (training/backends/autotrain.py).
# Idempotent: a stamp file, written last, makes a second run a quick no-op; a venv without
# it (an interrupted or failed build) is wiped and built again. About 2 min and 3 GB.
#
#   bash scripts/setup_autotrain.sh          # CPU build (default; what CI and tests use)
#   bash scripts/setup_autotrain.sh --gpu    # CUDA build, for a GPU Space or your own GPU
#
# CPU recipe: torch first (the CPU wheel, so the autotrain install keeps it), then
# autotrain-advanced with torch/torchvision pinned to match, then remove torchvision and
# timm: PyPI's torchvision is a CUDA build that crashes `accelerate launch` under CPU torch,
# and the LLM trainer needs neither.
# GPU recipe: the same install from PyPI's CUDA torch, torchvision kept. AutoTrain's
# bitsandbytes 0.45 fails with "No module named 'triton.ops'" on current triton, so 4-bit
# (method qlora) also needs `.venv-autotrain/bin/pip install -U bitsandbytes`; plain LoRA
# works without. Switching between the two flavours rebuilds the venv from scratch.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
VENV=${TUNESMITH_AUTOTRAIN_VENV:-.venv-autotrain}
case "${1:-}" in
  "" | --cpu) flavour=cpu ;;
  --gpu) flavour=gpu ;;
  *) echo "usage: $0 [--cpu | --gpu]" >&2; exit 2 ;;
esac

stamp=$VENV/.tunesmith-installed
want="$(sha256sum scripts/setup_autotrain.sh | cut -c1-16)-$flavour"
have=$(cat "$stamp" 2>/dev/null || true)
if [ "$have" = "$want" ] && [ -x "$VENV/bin/autotrain" ]; then
  exit 0
fi
# No stamp: half-built, start afresh. The other flavour: pip would keep its torch
# (2.13.0+cpu satisfies ==2.13.0). Only ever a venv is removed (pyvenv.cfg).
if [ -z "$have" ] || [ "${have##*-}" != "$flavour" ]; then
  if [ -f "$VENV/pyvenv.cfg" ]; then rm -rf "$VENV"; fi
fi
rm -f "$stamp"  # until the end: a half-built venv never counts as installed

echo "[1/4] Creating $VENV ($flavour build; about 2 minutes and 3 GB)"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
echo "[2/4] Installing torch 2.13.0"
"$VENV/bin/pip" install -q torch==2.13.0
echo "[3/4] Installing autotrain-advanced 0.8.36"
"$VENV/bin/pip" install -q autotrain-advanced==0.8.36 torch==2.13.0 torchvision==0.28.0
if [ "$flavour" = cpu ]; then
  "$VENV/bin/pip" uninstall -q -y torchvision timm
fi
echo "[4/4] Checking the install"
"$VENV/bin/python" -c "import autotrain.trainers.clm.__main__, peft, trl" >/dev/null
echo "$want" > "$stamp"
echo "AutoTrain ready: $VENV/bin/autotrain"
