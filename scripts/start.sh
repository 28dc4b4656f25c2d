#!/usr/bin/env bash
# Quick start: set up, then serve the app on http://127.0.0.1:7860 (GRADIO_SERVER_NAME /
# GRADIO_SERVER_PORT override) with the bundled default model and sample data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export GRADIO_ANALYTICS_ENABLED=False HF_HUB_DISABLE_TELEMETRY=1
exec .venv/bin/python app.py
