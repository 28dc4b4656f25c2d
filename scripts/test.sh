#!/usr/bin/env bash
# Set up with the test tools and Debian Chromium, lint, then run the whole suite,
# slow tests (real model, browser, AutoTrain) included. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
# AutoTrain lives in its own venv (pins old transformers); its tests run, never skip.
bash scripts/setup_autotrain.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest -m "slow or not slow" "$@"
